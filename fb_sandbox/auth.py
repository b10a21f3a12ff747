"""Access tokens and appsecret_proof, checked the way Facebook checks them."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .apps import app_secret, apps, main_app
from .errors import GraphError
from .store import Store

# What Ad Monster asks for; the default grant of POST /__sandbox/tokens and of the OAuth dialog.
DEFAULT_SCOPES = [
    "ads_management",
    "ads_read",
    "business_management",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_ads",
    "instagram_basic",
]
# Every permission name the sandbox accepts in the dialog's `scope` and in /me/permissions/{permission}.
KNOWN_SCOPES = DEFAULT_SCOPES + [
    "public_profile",
    "email",
    "pages_manage_metadata",
    "pages_manage_posts",
    "pages_messaging",
    "instagram_content_publish",
    "instagram_manage_insights",
    "instagram_manage_comments",
    "read_insights",
    "leads_retrieval",
    "catalog_management",
    "whatsapp_business_management",
]
TOKEN_TYPES = {"user": "USER", "system_user": "SYSTEM_USER", "page": "PAGE", "app": "APP"}
SHORT_LIVED = 5400  # seconds: a code exchanged for a token (about 1.5 h)
LONG_LIVED = 5183944  # seconds: fb_exchange_token (about 60 days), the figure Facebook answers
DATA_ACCESS_DAYS = 90
_ALNUM = string.ascii_letters + string.digits


@dataclass
class Principal:
    user_id: str
    token: str
    kind: str  # user | system_user | page | app
    scopes: list[str]
    app_id: str | None = None
    declined: list[str] = field(default_factory=list)


def new_token(prefix: str = "EAAS") -> str:
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(160))


def proof(app_secret: str, token: str) -> str:
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


def extract_token(params: dict, authorization: str | None) -> str | None:
    token = params.get("access_token")
    if isinstance(token, str) and token:
        return token
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() in ("bearer", "oauth") and value.strip():
            return value.strip()
    return None


def _fb_date(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%A, %d-%b-%y %H:%M:%S UTC")


def token_app(store: Store, row: dict) -> str | None:
    return row["meta"].get("app_id") or main_app(store)


def app_token_app(store: Store, token: str) -> str | None:
    """`APPID|APPSECRET` -> APPID when the pair is right, else None."""
    app_id, sep, secret = token.partition("|")
    if not sep:
        return None
    expected = apps(store).get(app_id, {}).get("secret")
    return app_id if expected and hmac.compare_digest(expected, secret) else None


def token_problem(store: Store, row: dict, now: float) -> GraphError | None:
    """Why a stored token is not valid now (revoked, expired), or None."""
    if row["meta"].get("revoked"):
        return GraphError(
            f"Error validating access token: The user has not authorized application {token_app(store, row)}.",
            190,
            subcode=458,
        )
    if row["expires_at"] and row["expires_at"] <= now:
        return GraphError(
            f"Error validating access token: Session has expired on {_fb_date(row['expires_at'])}. "
            f"The current time is {_fb_date(now)}.",
            190,
            subcode=463,
        )
    return None


def authenticate(store: Store, token: str | None, appsecret_proof, *, now: float, require_proof: bool) -> Principal:
    if not token:
        raise GraphError("An access token is required to request this resource.", 104)
    if "|" in token:
        app_id = app_token_app(store, token)
        if app_id is None:
            raise GraphError("Invalid OAuth access token - Cannot parse access token", 190)
        return Principal("", token, "app", [], app_id)
    row = store.get_token(token)
    if row is None:
        raise GraphError("Invalid OAuth access token - Cannot parse access token", 190)
    problem = token_problem(store, row, now)
    if problem is not None:
        raise problem
    app_id = token_app(store, row)
    secret = app_secret(store, app_id)
    if appsecret_proof not in (None, ""):
        expected = proof(secret or "", token)
        if not isinstance(appsecret_proof, str) or not hmac.compare_digest(expected, appsecret_proof.lower()):
            raise GraphError("Invalid appsecret_proof provided in the API argument", 100, type="GraphMethodException")
    elif require_proof and secret:
        raise GraphError(
            "API calls from the server require an appsecret_proof argument", 100, type="GraphMethodException"
        )
    return Principal(row["user_id"], token, row["kind"], row["scopes"], app_id, row["meta"].get("declined", []))


def issue_token(
    store: Store,
    *,
    now: float,
    expires_in: float,
    scopes: list[str] | None,
    user_id: str | None = None,
    kind: str = "user",
    app_id: str | None = None,
    declined: list[str] | None = None,
) -> dict:
    user = user_id or store.kv_get("demo_user_id")
    if not user:
        raise GraphError("The sandbox has no demo user: POST /__sandbox/reset first", 100)
    app = app_id or main_app(store)
    token = new_token()
    expires_at = 0 if not expires_in else int(now + expires_in)
    granted = list(DEFAULT_SCOPES if scopes is None else scopes)
    store.add_token(
        token,
        user,
        kind,
        granted,
        now,
        expires_at,
        {"app_id": app, "declined": [d for d in (declined or []) if d not in granted]},
    )
    return {
        "access_token": token,
        "app_id": app,
        "app_secret": app_secret(store, app),
        "user_id": user,
        "expires_at": expires_at,
    }


def revoke_user_app(store: Store, user_id: str, app_id: str | None, *, permission: str | None = None) -> None:
    """DELETE /me/permissions[/{permission}]: every token of this user for this app loses it (or everything)."""
    for row in store.user_tokens(user_id):
        if token_app(store, row) != app_id:
            continue
        meta = dict(row["meta"])
        if permission is None:
            meta["revoked"] = True
            store.update_token(row["token"], meta=meta)
        elif permission in row["scopes"]:
            meta["declined"] = sorted(set(meta.get("declined", [])) | {permission})
            store.update_token(row["token"], scopes=[s for s in row["scopes"] if s != permission], meta=meta)
