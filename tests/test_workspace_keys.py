"""`admonster workspace keys list|create|rotate|revoke` (issue 18): the CLI run as a person runs it, against the home a
running `admonster serve` uses; a rotated or revoked key is refused (401) over real HTTP at once."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import aiohttp

from admonster_store import Store, api_key_id, hash_api_key, head_revision
from admonster_store_legacy import LEGACY_VERSION, upgrade_legacy
from testkit import running_server

ROOT = Path(__file__).resolve().parent.parent


async def _cli(home: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "ADMONSTER_HOME": str(home)}
    env.pop("ADMONSTER_SECRET_KEY", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "admonster_bot",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


def _key_in(text: str) -> str:
    [key] = [line.strip() for line in text.splitlines() if line.strip().startswith("amk_")]
    return key


async def _status(url: str, key: str) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{url}/v1/tools/facebook", json={"op": "list_confirmations"}, headers={"Authorization": f"Bearer {key}"}
        ) as resp:
            return resp.status


async def test_keys_are_listed_rotated_and_revoked_over_real_http(tmp_path):
    async with running_server(tmp_path) as (url, runtime):
        home = Path(runtime.settings.home)
        code, out, err = await _cli(home, "workspace", "create", "acme")
        assert code == 0, err
        first = _key_in(out)
        assert await _status(url, first) == 200

        code, out, err = await _cli(home, "workspace", "create", "acme")
        assert code == 1 and "amk_" not in out + err
        assert (
            "workspace acme exists" in err and "admonster workspace keys create acme" in err and "Traceback" not in err
        )

        code, out, err = await _cli(home, "workspace", "keys", "create", "acme")
        assert code == 0, err
        second = _key_in(out)
        assert await _status(url, second) == 200

        code, listed, err = await _cli(home, "workspace", "keys", "list", "acme")
        assert code == 0, err
        assert first not in listed and second not in listed  # never the secret
        assert [line.split("…")[0] for line in listed.splitlines()] == [api_key_id(first), api_key_id(second)]
        assert all(line.endswith("valid") and "created 20" in line for line in listed.splitlines())

        code, out, err = await _cli(home, "workspace", "keys", "rotate", "acme", api_key_id(first))
        assert code == 0, err
        third = _key_in(out)
        assert third not in (first, second)
        assert (
            await _status(url, first) == 401 and await _status(url, third) == 200 and await _status(url, second) == 200
        )

        code, out, err = await _cli(home, "workspace", "keys", "revoke", "acme", api_key_id(second))
        assert code == 0 and "401" in out, err
        assert await _status(url, second) == 401 and await _status(url, third) == 200

        code, listed, _ = await _cli(home, "workspace", "keys", "list", "acme")
        states = {line.split("…")[0]: line.rsplit("\t", 1)[1] for line in listed.splitlines()}
        assert states[api_key_id(third)] == "valid"
        assert states[api_key_id(first)].startswith("revoked 20") and states[api_key_id(second)].startswith(
            "revoked 20"
        )

        for args in (("revoke", "acme", api_key_id(second)), ("rotate", "acme", "amk_nope"), ("list", "nobody")):
            code, out, err = await _cli(home, "workspace", "keys", *args)
            assert code == 1 and err.startswith("ERROR not_found:") and "Fix:" in err and "Traceback" not in err
        assert await _status(url, third) == 200  # a failed rotate revoked nothing


async def test_another_workspace_cannot_revoke_or_rotate_a_key(store):
    alpha, beta = await store.ensure_workspace("alpha"), await store.ensure_workspace("beta")
    key = await store.create_api_key(alpha.id)
    assert await store.revoke_api_key(beta.id, api_key_id(key)) is None
    assert await store.rotate_api_key(beta.id, key) is None
    assert [k.key_id for k in await store.list_api_keys(beta.id)] == []
    assert (await store.workspace_for_api_key(key)).id == alpha.id
    revoked = await store.revoke_api_key(alpha.id, key)  # the whole key works as its id too
    assert revoked.key_id == api_key_id(key) and revoked.revoked_at
    assert await store.workspace_for_api_key(key) is None


async def test_keys_made_by_the_previous_schema_keep_working(tmp_path):
    db_path = tmp_path / "home" / "admonster.db"
    db_path.parent.mkdir(mode=0o700)
    assert upgrade_legacy(db_path, 9) == 9
    key = "amk_" + "k" * 43
    with sqlite3.connect(db_path) as old:  # a key as the version 9 code wrote it
        workspace_id = old.execute(
            "INSERT INTO workspaces (name, created_at) VALUES ('old', '2026-03-01T00:00:00+00:00')"
        ).lastrowid
        old.execute(
            "INSERT INTO api_keys (key_hash, key_id, workspace_id, created_at) VALUES (?, ?, ?, '2026-03-01T00:00:00+00:00')",
            (hash_api_key(key), api_key_id(key), workspace_id),
        )
    async with await Store.open(db_path) as store:
        workspace = await store.get_workspace(workspace_id)
        assert await store.schema_version() == int(head_revision()) > LEGACY_VERSION
        assert (await store.workspace_for_api_key(key)).name == "old"
        [listed] = await store.list_api_keys(workspace.id)
        assert listed.key_id == api_key_id(key) and listed.revoked_at is None
