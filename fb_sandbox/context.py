"""Request/answer types shared by the router and the handlers, and object access checks."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .auth import Principal
from .errors import not_found
from .params import Params
from .state import Sandbox
from .store import Obj
from .versions import DEFAULT_VERSION


@dataclass
class GraphCall:
    method: str
    path: str  # after the version, no leading slash
    params: dict[str, Any]
    authorization: str | None = None
    base_url: str = ""
    version: str = DEFAULT_VERSION
    files: dict[str, bytes] = field(default_factory=dict)
    method_override: bool = False  # an HTTP POST carried method=GET/DELETE (a legacy feature, see legacy.py)


@dataclass
class GraphResult:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    jsonp: str | None = None  # answer as JSONP `/**/ name(body);` (an old app's `callback`, legacy.py)


@dataclass
class Ctx:
    sb: Sandbox
    call: GraphCall
    principal: Principal
    p: Params
    match: tuple = ()

    @property
    def now(self) -> float:
        return self.sb.now()

    @property
    def store(self):
        return self.sb.store

    def user_account_ids(self) -> list[str]:
        user = self.store.get(self.principal.user_id)
        return list(user.get("_account_ids", [])) if user else []

    def can_see(self, obj: Obj) -> bool:
        if obj.type == "user":
            return True
        account = obj.account_id or (obj["id"] if obj.type == "adaccount" else None)
        if account:
            return account in self.user_account_ids()
        return self.principal.user_id in obj.get("_user_ids", [])

    def load(self, obj_id: str | None, *, types: tuple[str, ...] | None = None) -> Obj:
        obj = self.store.get(obj_id) if obj_id is not None else None
        if obj is None or not self.can_see(obj) or (types and obj.type not in types):
            raise not_found(str(obj_id))
        return obj

    def load_account(self, act_id: str | None) -> Obj:
        return self.load(act_id, types=("adaccount",))


def account_digits(act_id: str | None) -> str | None:
    if act_id and re.fullmatch(r"act_\d+", act_id):
        return act_id[4:]
    return None
