"""Meta's spec as the sandbox reads it: every served node type's fields and edges, derived from the installed
`facebook_business` SDK at import time (the SDK is generated from Meta's API specs; nothing here is typed by hand
except which SDK class stands for which stored node type).

- Fields: the string constants of `<Node>.Field`.
- Edges: each `get_<x>` / `create_<x>` / `delete_<x>` method of the class builds a `FacebookRequest` with a method
  (GET, POST, DELETE), an `endpoint` ('/<edge>') and a `target_class`; the edge name is the endpoint, not the
  method name (`Business.get_ads_pixels` is the edge `adspixels`). `endpoint='/'` is the node itself.
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from dataclasses import dataclass, field
from functools import cache

# stored node type -> the SDK class that describes it (module = lower-cased class name)
SERVED: dict[str, str] = {
    "adaccount": "AdAccount",
    "campaign": "Campaign",
    "adset": "AdSet",
    "ad": "Ad",
    "adcreative": "AdCreative",
    "adimage": "AdImage",
    "video": "AdVideo",
    "customaudience": "CustomAudience",
    "savedaudience": "SavedAudience",
    "customconversion": "CustomConversion",
    "pixel": "AdsPixel",
    "page": "Page",
    "user": "User",
    "business": "Business",
    "business_user": "BusinessUser",
    "instagram": "IGUser",
    "adstudy": "AdStudy",
    "adstudycell": "AdStudyCell",
    "report_run": "AdReportRun",
}

_METHOD_RE = re.compile(r"method='(GET|POST|DELETE)'")
_ENDPOINT_RE = re.compile(r"endpoint='/([^']*)'")
_TARGET_RE = re.compile(r"target_class=(\w+)")


@dataclass
class Edge:
    name: str
    methods: set[str] = field(default_factory=set)
    target: str = ""  # the SDK class of the edge's items (from the GET method when there is one)


def _klass(cls_name: str):
    return getattr(importlib.import_module(f"facebook_business.adobjects.{cls_name.lower()}"), cls_name)


@cache
def fields(cls_name: str) -> frozenset[str]:
    """The fields `<cls_name>.Field` lists."""
    klass = _klass(cls_name)
    return frozenset(v for k, v in vars(klass.Field).items() if not k.startswith("_") and isinstance(v, str))


@cache
def edges(cls_name: str) -> dict[str, Edge]:
    """edge name -> Edge: each get_/create_/delete_ method of the class is asked for its request (`pending=True`
    builds the FacebookRequest without sending it) and its `_method`/`_endpoint`/`_target_class` are read. A method
    the SDK cannot build (one imports a module with a syntax error in SDK 26.0.3) is read from its source instead."""
    from facebook_business.api import FacebookRequest

    klass = _klass(cls_name)
    node = klass("0")
    out: dict[str, Edge] = {}
    for name in sorted(vars(klass)):
        if not re.match(r"(get|create|delete)_", name) or not callable(getattr(klass, name)):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                request = getattr(node, name)(pending=True)
        except Exception:  # noqa: BLE001 - read the method's source instead
            request = None
        if isinstance(request, FacebookRequest):
            method, endpoint = request._method, request._endpoint.strip("/")
            target = getattr(request._target_class, "__name__", "")
        else:
            found = _from_source(getattr(klass, name))
            if found is None:
                continue
            method, endpoint, target = found
        if not endpoint:
            continue  # `endpoint='/'`: the node itself (api_get/api_update/api_delete)
        edge = out.setdefault(endpoint, Edge(endpoint))
        edge.methods.add(method)
        if method == "GET" or not edge.target:
            edge.target = target
    return out


def _from_source(fn) -> tuple[str, str, str] | None:
    try:
        body = inspect.getsource(fn)
    except (OSError, TypeError):
        return None
    method, endpoint, target = _METHOD_RE.search(body), _ENDPOINT_RE.search(body), _TARGET_RE.search(body)
    if method is None or endpoint is None:
        return None
    return method.group(1), endpoint.group(1).strip("/"), target.group(1) if target else ""


def get_edges(cls_name: str) -> frozenset[str]:
    """The edges of `cls_name` that answer GET."""
    return frozenset(name for name, e in edges(cls_name).items() if "GET" in e.methods)


def class_of(node_type: str) -> str | None:
    return SERVED.get(node_type)


def summary() -> dict[str, tuple[int, int]]:
    """SDK class -> (fields, GET edges): the figures docs/fidelity.md reports."""
    return {cls: (len(fields(cls)), len(get_edges(cls))) for cls in sorted(set(SERVED.values()))}
