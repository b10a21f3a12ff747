"""Shared helpers for the sandbox tests: a tiny Graph client over plain aiohttp (no product code)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

VERSION = "v26.0"
USD = "act_100000000000001"
JPY = "act_100000000000002"


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any

    @property
    def error(self) -> dict:
        assert isinstance(self.body, dict) and "error" in self.body, self.body
        return self.body["error"]

    def blame(self) -> list:
        return json.loads(self.error["error_data"])["blame_field_specs"][0]


def proof(secret: str, token: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


class Graph:
    def __init__(self, url: str, token: dict) -> None:
        self.url, self.token = url, token

    def auth(self) -> dict:
        return {
            "access_token": self.token["access_token"],
            "appsecret_proof": proof(self.token["app_secret"], self.token["access_token"]),
        }

    async def call(
        self,
        method: str,
        path: str,
        params: dict | None = None,
        data: Any = None,
        json_body: Any = None,
        auth: bool = True,
        version: str = VERSION,
    ) -> Answer:
        query = {**(self.auth() if auth else {}), **(params or {})}
        url = f"{self.url}/{version}/{path}" if version else f"{self.url}/{path}"
        async with aiohttp.ClientSession() as session:
            async with session.request(method, url, params=query, data=data, json=json_body) as resp:
                text = await resp.text()
                try:
                    body = json.loads(text)
                except ValueError:
                    body = text
                return Answer(resp.status, body, resp.headers)

    async def get(self, path: str, **params) -> Answer:
        return await self.call("GET", path, params)

    async def post(self, path: str, data: dict | None = None, **params) -> Answer:
        return await self.call("POST", path, params, data=data)

    async def delete(self, path: str) -> Answer:
        return await self.call("DELETE", path)


def campaign_form(**overrides) -> dict:
    form = {
        "name": "Test campaign",
        "objective": "OUTCOME_TRAFFIC",
        "special_ad_categories": "[]",
        "status": "PAUSED",
        "daily_budget": "1000",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


OLD_APP_CREATED = "2025-06-01T00:00:00+0000"  # before 2026-11-04: the legacy Graph features still work (legacy.py)


async def make_old_app(sandbox, app: str = "main") -> None:
    """Give the sandbox app a creation date before Meta's 2026-11-04 legacy-feature block."""
    await sandbox.control("POST", "apps", {"app": app, "created_time": OLD_APP_CREATED})


@pytest.fixture
async def graph(sandbox, demo_token) -> Graph:
    return Graph(sandbox.url, demo_token)
