"""The sandbox's apps: its own app ("Ad Monster (sandbox)") and a second, "other" app, each with an id and secret."""
from __future__ import annotations

import secrets

from .store import Store

APP_NAME = "Ad Monster (sandbox)"
OTHER_APP_NAME = "Some Other App (sandbox)"


def ensure_apps(store: Store) -> None:
    """Create the other app in a database seeded before it existed (the main app comes from the seed)."""
    if store.kv_get("app_id") and not store.kv_get("other_app_id"):
        store.kv_set("other_app_id", store.new_id("app"))
        store.kv_set("other_app_secret", secrets.token_hex(16))


def main_app(store: Store) -> str | None:
    return store.kv_get("app_id")


def apps(store: Store) -> dict[str, dict]:
    """app id -> {"secret", "name"} for every app the sandbox knows."""
    out = {}
    if store.kv_get("app_id"):
        out[store.kv_get("app_id")] = {"secret": store.kv_get("app_secret"), "name": APP_NAME}
    if store.kv_get("other_app_id"):
        out[store.kv_get("other_app_id")] = {"secret": store.kv_get("other_app_secret"), "name": OTHER_APP_NAME}
    return out


def app_secret(store: Store, app_id: str | None) -> str | None:
    info = apps(store).get(app_id or "")
    return info["secret"] if info else None


def app_name(store: Store, app_id: str | None) -> str:
    info = apps(store).get(app_id or "")
    return info["name"] if info else ""


def resolve_app(store: Store, which: str | None) -> str | None:
    """"main"/None -> the sandbox's app id, "other" -> the other app's id, an app id -> itself if known."""
    if which in (None, "", "main"):
        return main_app(store)
    if which == "other":
        return store.kv_get("other_app_id")
    return which if which in apps(store) else None
