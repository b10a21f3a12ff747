"""Meta's spec as the sandbox reads it: every served node type's fields and edges, derived from the installed
`facebook_business` SDK at import time (the SDK is generated from Meta's API specs; nothing here is typed by hand
except which SDK class stands for which stored node type).

- Fields: the string constants of `<Node>.Field`.
- Edges: each `get_<x>` / `create_<x>` / `delete_<x>` method of the class builds a `FacebookRequest(...)` with
  `method='GET'|'POST'|'DELETE'`, `endpoint='/<edge>'` and `target_class=<Class>`; the edge name is the endpoint
  (not the method name: `Business.get_ads_pixels` is the edge `adspixels`). `endpoint='/'` is the node itself.
"""
from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass, field
from functools import lru_cache

# stored node type -> the SDK class that describes it (module = lower-cased class name)
SERVED: dict[str, str] = {
    "adaccount": "AdAccount", "campaign": "Campaign", "adset": "AdSet", "ad": "Ad", "adcreative": "AdCreative",
    "adimage": "AdImage", "video": "AdVideo", "customaudience": "CustomAudience", "savedaudience": "SavedAudience",
    "customconversion": "CustomConversion", "pixel": "AdsPixel", "page": "Page", "user": "User",
    "business": "Business", "business_user": "BusinessUser", "instagram": "IGUser", "adstudy": "AdStudy",
    "adstudycell": "AdStudyCell", "report_run": "AdReportRun",
}

_DEF_RE = re.compile(r"^    def (get|create|delete)_(\w+)\(self", re.MULTILINE)
_METHOD_RE = re.compile(r"method='(GET|POST|DELETE)'")
_ENDPOINT_RE = re.compile(r"endpoint='/([^']*)'")
_TARGET_RE = re.compile(r"target_class=(\w+)")


@dataclass
class Edge:
    name: str
    methods: set[str] = field(default_factory=set)
    target: str = ""          # the SDK class of the edge's items (from the GET method when there is one)


def _klass(cls_name: str):
    return getattr(importlib.import_module(f"facebook_business.adobjects.{cls_name.lower()}"), cls_name)


@lru_cache(maxsize=None)
def fields(cls_name: str) -> frozenset[str]:
    """The fields `<cls_name>.Field` lists."""
    klass = _klass(cls_name)
    return frozenset(v for k, v in vars(klass.Field).items() if not k.startswith("_") and isinstance(v, str))


@lru_cache(maxsize=None)
def edges(cls_name: str) -> dict[str, Edge]:
    """edge name -> Edge, read from the FacebookRequest each get_/create_/delete_ method of the class builds."""
    source = inspect.getsource(_klass(cls_name))
    starts = [m.start() for m in _DEF_RE.finditer(source)] + [len(source)]
    out: dict[str, Edge] = {}
    for begin, end in zip(starts, starts[1:]):
        body = source[begin:end]
        method, endpoint = _METHOD_RE.search(body), _ENDPOINT_RE.search(body)
        if method is None or endpoint is None or not endpoint.group(1):
            continue                      # `endpoint='/'`: the node itself (api_get/api_update/api_delete)
        edge = out.setdefault(endpoint.group(1), Edge(endpoint.group(1)))
        edge.methods.add(method.group(1))
        target = _TARGET_RE.search(body)
        if target is not None and (method.group(1) == "GET" or not edge.target):
            edge.target = target.group(1)
    return out


def get_edges(cls_name: str) -> frozenset[str]:
    """The edges of `cls_name` that answer GET."""
    return frozenset(name for name, e in edges(cls_name).items() if "GET" in e.methods)


def class_of(node_type: str) -> str | None:
    return SERVED.get(node_type)


def summary() -> dict[str, tuple[int, int]]:
    """SDK class -> (fields, GET edges): the figures docs/fidelity.md reports."""
    return {cls: (len(fields(cls)), len(get_edges(cls))) for cls in sorted(set(SERVED.values()))}
