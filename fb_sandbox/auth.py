"""Access tokens and appsecret_proof, checked the way Facebook checks them."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timezone

from .errors import GraphError
from .store import Store

DEFAULT_SCOPES = [
    "ads_management", "ads_read", "business_management", "pages_show_list", "pages_read_engagement",
    "pages_manage_ads", "instagram_basic", "public_profile", "email",
]
_ALNUM = string.ascii_letters + string.digits


@dataclass
class Principal:
    user_id: str
    token: str
    kind: str
    scopes: list[str]


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
    return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%A, %d-%b-%y %H:%M:%S UTC")


def authenticate(store: Store, token: str | None, appsecret_proof, *, now: float,
                 require_proof: bool) -> Principal:
    if not token:
        raise GraphError("An access token is required to request this resource.", 104)
    row = store.get_token(token)
    if row is None:
        raise GraphError("Invalid OAuth access token - Cannot parse access token", 190)
    if row["expires_at"] and row["expires_at"] <= now:
        raise GraphError(
            f"Error validating access token: Session has expired on {_fb_date(row['expires_at'])}. "
            f"The current time is {_fb_date(now)}.", 190, subcode=463)
    secret = store.kv_get("app_secret")
    if appsecret_proof not in (None, ""):
        expected = proof(secret or "", token)
        if not isinstance(appsecret_proof, str) or not hmac.compare_digest(expected, appsecret_proof.lower()):
            raise GraphError("Invalid appsecret_proof provided in the API argument", 100,
                             type="GraphMethodException")
    elif require_proof and secret:
        raise GraphError("API calls from the server require an appsecret_proof argument", 100,
                         type="GraphMethodException")
    return Principal(row["user_id"], token, row["kind"], row["scopes"])


def issue_token(store: Store, *, now: float, expires_in: float, scopes: list[str] | None,
                user_id: str | None = None, kind: str = "user") -> dict:
    user = user_id or store.kv_get("demo_user_id")
    if not user:
        raise GraphError("The sandbox has no demo user: POST /__sandbox/reset first", 100)
    token = new_token()
    expires_at = 0 if not expires_in else int(now + expires_in)
    store.add_token(token, user, kind, list(scopes or DEFAULT_SCOPES), now, expires_at)
    return {"access_token": token, "app_id": store.kv_get("app_id"), "app_secret": store.kv_get("app_secret"),
            "user_id": user, "expires_at": expires_at}
