"""Typed access to Graph parameters that may arrive as strings (query, form) or JSON values."""

from __future__ import annotations

import builtins
import json
from typing import Any, Literal, overload

from .errors import param_error

MAX_INT = 2**53


class Params:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def __contains__(self, name: str) -> bool:
        return name in self.raw and self.raw[name] is not None

    def get(self, name: str, default: Any = None) -> Any:
        return self.raw.get(name, default)

    # With a default, or required, a parameter always has a value: the overloads tell mypy so.
    @overload
    def str(self, name: builtins.str, default: builtins.str, *, required: builtins.bool = False) -> builtins.str: ...
    @overload
    def str(self, name: builtins.str, default: None = None, *, required: Literal[True]) -> builtins.str: ...
    @overload
    def str(
        self, name: builtins.str, default: None = None, *, required: builtins.bool = False
    ) -> builtins.str | None: ...
    def str(
        self, name: builtins.str, default: builtins.str | None = None, *, required: builtins.bool = False
    ) -> builtins.str | None:
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise param_error(f"The parameter {name} is required", field=name)
            return default
        if isinstance(value, (dict, list)):
            raise param_error(f"Param {name} must be a string.", field=name)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    @overload
    def int(
        self, name: builtins.str, default: builtins.int, *, minimum: builtins.int | None = None
    ) -> builtins.int: ...
    @overload
    def int(
        self, name: builtins.str, default: None = None, *, minimum: builtins.int | None = None
    ) -> builtins.int | None: ...
    def int(
        self, name: builtins.str, default: builtins.int | None = None, *, minimum: builtins.int | None = None
    ) -> builtins.int | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        number = to_int(value)
        if number is None:
            raise param_error(f"Param {name} must be an integer.", field=name)
        if minimum is not None and number < minimum:
            raise param_error(f"Param {name} must be a non-negative integer.", field=name)
        return number

    @overload
    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool: ...
    @overload
    def bool(self, name: builtins.str, default: None = None) -> builtins.bool | None: ...
    def bool(self, name: builtins.str, default: builtins.bool | None = None) -> builtins.bool | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        result = to_bool(value)
        if result is None:
            raise param_error(f"Param {name} must be a boolean.", field=name)
        return result

    def json(self, name: builtins.str, default: Any = None) -> Any:
        value = self.raw.get(name)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value  # a bare word, e.g. effective_status=ACTIVE

    @overload
    def list(self, name: builtins.str, default: builtins.list[Any]) -> builtins.list[Any]: ...
    @overload
    def list(self, name: builtins.str, default: None = None) -> builtins.list[Any] | None: ...
    def list(self, name: builtins.str, default: builtins.list[Any] | None = None) -> builtins.list[Any] | None:
        value = self.json(name, None)
        if value is None:
            return default
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(self.raw.get(name), str):
            return [self.raw[name].strip()]  # one bare id, e.g. ids=17841400000000001
        if not isinstance(value, list):
            raise param_error(f"Param {name} must be an array.", field=name)
        return value

    @overload
    def obj(self, name: builtins.str, default: dict[builtins.str, Any]) -> dict[builtins.str, Any]: ...
    @overload
    def obj(self, name: builtins.str, default: None = None) -> dict[builtins.str, Any] | None: ...
    def obj(self, name: builtins.str, default: dict[builtins.str, Any] | None = None) -> dict[builtins.str, Any] | None:
        value = self.json(name, None)
        if value is None:
            return default
        if not isinstance(value, dict):
            raise param_error(f"Param {name} must be a JSON object.", field=name)
        return value


def to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < MAX_INT else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < MAX_INT else None
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit() and text.isascii() and len(text) < 17:
            return int(text)
    return None


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value) if value in (0, 1) else None
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0"):
            return False
    return None
