"""The sandbox's apps: its own app ("Ad Monster (sandbox)") and a second, "other" app, each with an id and secret."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from .store import Store

APP_NAME = "Ad Monster (sandbox)"
OTHER_APP_NAME = "Some Other App (sandbox)"


# When the sandbox's apps were created. Every Ad Monster user brings a newly created app, so both sandbox apps are
# "new" for Meta's legacy-feature block of 2026-11-04 (legacy.py); POST /__sandbox/apps makes one "old" for a test.
NEW_APP_CREATED = datetime(2026, 11, 20, tzinfo=UTC).timestamp()


def app_created(store: Store, app_id: str | None) -> float:
    """The app's creation time (epoch seconds); an app never given one is new."""
    value = store.kv_get(f"app_created:{app_id}") if app_id else None
    return float(value) if value is not None else NEW_APP_CREATED


def set_app_created(store: Store, app_id: str, epoch: float) -> None:
    store.kv_set(f"app_created:{app_id}", float(epoch))


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
    """ "main"/None -> the sandbox's app id, "other" -> the other app's id, an app id -> itself if known."""
    if which in (None, "", "main"):
        return main_app(store)
    if which == "other":
        return store.kv_get("other_app_id")
    return which if which in apps(store) else None
