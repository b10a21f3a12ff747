"""The throwaway PostgreSQL server the tests start themselves (tests/pgserver.py, fixtures in tests/conftest.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

import pgserver

TESTS = Path(__file__).resolve().parent


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket in LISTEN state on `port` (IPv4 and IPv6), read from /proc/net."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                assert len(address) == width
                if width == 8:
                    found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
                else:
                    found.add(address)
    return found


def run_inner_session(
    tmp_path: Path, source: str, *, env: dict[str, str] | None = None, wait: bool = True
) -> subprocess.CompletedProcess | subprocess.Popen:
    """A separate pytest session over one test file, with this suite's fixtures (tests/conftest.py as a plugin)."""
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(source)
    child_env = {k: v for k, v in os.environ.items() if k != pgserver.TEST_DATABASE_URL_ENV}
    child_env.update({"PYTHONPATH": str(TESTS), "PG_HARNESS_RECORD": str(tmp_path / "record.jsonl"), **(env or {})})
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "conftest",
        "-p",
        "no:cacheprovider",
        "-rA",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        f"--basetemp={tmp_path / 'inner-basetemp'}",
        str(test_file),
    ]
    if not wait:
        return subprocess.Popen(
            command,
            cwd=tmp_path,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return subprocess.run(
        command, cwd=tmp_path, env=child_env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
    )


def records(tmp_path: Path) -> list[dict]:
    path = tmp_path / "record.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


INNER_HELPERS = """
import asyncio, json, os, pathlib, time
import asyncpg
import pgserver

RECORD = pathlib.Path(os.environ["PG_HARNESS_RECORD"])


def note(**facts):
    with RECORD.open("a") as record:
        record.write(json.dumps(facts) + "\\n")


async def look_and_write(url):
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        name = await connection.fetchval("SELECT current_database()")
        tables = await connection.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
        await connection.execute("CREATE TABLE left_behind (id int)")
        return name, tables
    finally:
        await connection.close()
"""


async def test_the_server_accepts_asyncpg_connections_to_a_fresh_database(postgres_url):
    assert postgres_url.startswith("postgresql+asyncpg://")
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        version = await connection.fetchval("SHOW server_version_num")
        database = await connection.fetchval("SELECT current_database()")
        tables = await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        await connection.execute("CREATE TABLE t (id serial PRIMARY KEY, note text)")
        await connection.execute("INSERT INTO t (note) VALUES ($1), ($2)", "a", "b")
        assert await connection.fetchval("SELECT count(*) FROM t") == 2
    finally:
        await connection.close()
    assert int(version) >= 130000, "DROP DATABASE … WITH (FORCE) needs PostgreSQL 13 or newer"
    assert postgres_url.endswith("/" + database)
    assert tables == 0


def test_fixture_sqlalchemy_url_names_host_port_and_superuser(postgres_server, postgres_url):
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    assert (url.drivername, url.host, url.port, url.username) == (
        "postgresql+asyncpg",
        postgres_server.host,
        postgres_server.port,
        postgres_server.superuser,
    )
    assert make_url(postgres_server.url("x", driver="postgresql")).drivername == "postgresql"


async def test_sqlalchemy_async_engine_runs_on_the_fresh_database(postgres_url):
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE ledger (id int PRIMARY KEY)"))
            await connection.execute(text("INSERT INTO ledger VALUES (1), (2), (3)"))
        async with engine.connect() as connection:
            total = (await connection.execute(text("SELECT sum(id) FROM ledger"))).scalar_one()
    finally:
        await engine.dispose()
    assert total == 6


def test_each_test_gets_its_own_empty_database_dropped_after_it_and_the_server_goes_at_the_end(tmp_path):
    done = run_inner_session(
        tmp_path,
        INNER_HELPERS
        + """

OPEN = []


def test_first(postgres_server, postgres_url):
    name, tables = pgserver.run_sync(look_and_write(postgres_url))
    # A connection the test forgets to close: dropping its database after the test must not wait for it.
    OPEN.append(pgserver.run_sync(asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))))
    note(test="first", name=name, tables=tables, folder=str(postgres_server.folder), port=postgres_server.port)


def test_second(postgres_server, postgres_url):
    name, tables = pgserver.run_sync(look_and_write(postgres_url))
    first = json.loads(RECORD.read_text().splitlines()[0])["name"]
    note(test="second", name=name, tables=tables, first_exists=pgserver.run_sync(postgres_server.database_exists(first)),
         own_exists=pgserver.run_sync(postgres_server.database_exists(name)))


def test_fails_on_purpose(postgres_url):
    assert postgres_url == "a failing test must not keep the server alive"
""",
    )
    output = done.stdout + done.stderr
    first, second = records(tmp_path)
    assert done.returncode == 1, output
    assert re.search(r"\b1 failed, 2 passed in ", output), output
    assert first["name"] != second["name"]
    assert (first["tables"], second["tables"]) == (0, 0)  # the first test's table did not follow into the second
    assert second["own_exists"] is True and second["first_exists"] is False
    assert Path(first["folder"]).name.startswith(pgserver.FOLDER_PREFIX)
    assert not Path(first["folder"]).exists()
    assert listening_addresses(first["port"]) == set()


def test_an_interrupted_session_still_stops_the_server_and_removes_its_folder(tmp_path):
    child = run_inner_session(
        tmp_path,
        INNER_HELPERS
        + """

def test_waits_for_ctrl_c(postgres_server, postgres_url):
    note(folder=str(postgres_server.folder), port=postgres_server.port)
    time.sleep(120)
""",
        wait=False,
    )
    try:
        deadline = time.monotonic() + 120
        while not records(tmp_path) and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        (started,) = records(tmp_path)
        assert Path(started["folder"]).is_dir()
        assert listening_addresses(started["port"]) == {"127.0.0.1"}
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "KeyboardInterrupt" in output, output
    assert not Path(started["folder"]).exists(), output
    assert listening_addresses(started["port"]) == set()


def test_a_server_left_by_a_killed_session_is_stopped_and_removed_by_the_next(tmp_path):
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time, pgserver; s = pgserver.start_server(); print(s.folder, s.port, flush=True); time.sleep(120)",
        ],
        cwd=TESTS,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        folder, port = child.stdout.readline().split()
    finally:
        child.kill()  # SIGKILL: no teardown runs; the detached PostgreSQL server keeps running
        child.wait()
    folder = Path(folder)
    assert folder.is_dir() and listening_addresses(int(port)) == {"127.0.0.1"}
    removed = pgserver.remove_abandoned_servers(folder.parent, pgserver.find_binaries(), pgserver._owner_for_root())
    assert folder in removed
    assert not folder.exists()
    assert listening_addresses(int(port)) == set()


async def test_the_server_listens_on_loopback_only_and_trusts_only_loopback(postgres_server):
    server = postgres_server if postgres_server.folder else pgserver.start_server()
    try:
        assert listening_addresses(server.port) == {"127.0.0.1"}
        connection = await server.connect()
        try:
            listen = await connection.fetchval("SHOW listen_addresses")
            hba = await connection.fetch("SELECT type, address, auth_method FROM pg_hba_file_rules")
            durability = [
                await connection.fetchval(f"SHOW {name}")
                for name in ("fsync", "full_page_writes", "synchronous_commit")
            ]
        finally:
            await connection.close()
    finally:
        if server is not postgres_server:
            server.stop()
    assert listen == "127.0.0.1"
    assert {(rule["type"], rule["address"]) for rule in hba} == {("local", None), ("host", "127.0.0.1")}
    assert durability == ["off", "off", "off"]


def test_the_data_folder_is_outside_the_homes_the_suite_scans(postgres_server, tmp_path_factory):
    if postgres_server.folder is None:
        pytest.fail(
            "this check is about the server the harness starts; unset ADMONSTER_TEST_DATABASE_URL", pytrace=False
        )
    basetemp = tmp_path_factory.getbasetemp().resolve()
    assert basetemp not in postgres_server.folder.resolve().parents
    assert (postgres_server.data_folder / "PG_VERSION").is_file()


def test_without_postgresql_the_tests_that_need_it_fail_with_one_line_saying_make_test_installs_it(tmp_path):
    done = run_inner_session(
        tmp_path,
        f"""
import pgserver
pgserver.DEBIAN_ROOT = {str(tmp_path / "no-postgresql")!r}


def test_needs_postgres(postgres_url):
    assert postgres_url
""",
        env={"PATH": str(tmp_path / "empty-bin")},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "1 error" in output and "skipped" not in output, output
    assert pgserver.MISSING in output
    assert "`make test`" in pgserver.MISSING
    assert "Traceback" not in output and "another exception occurred" not in output, output


def test_an_existing_server_from_the_environment_is_used_and_left_running(tmp_path, postgres_server):
    done = run_inner_session(
        tmp_path,
        INNER_HELPERS
        + """

def test_on_the_existing_server(postgres_server, postgres_url):
    name, tables = pgserver.run_sync(look_and_write(postgres_url))
    note(name=name, tables=tables, folder=str(postgres_server.folder), port=postgres_server.port)
""",
        env={pgserver.TEST_DATABASE_URL_ENV: postgres_server.url(postgres_server.admin_database, driver="postgresql")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (used,) = records(tmp_path)
    assert (used["port"], used["folder"], used["tables"]) == (postgres_server.port, "None", 0)
    assert pgserver.run_sync(postgres_server.database_exists(postgres_server.admin_database))
    assert not pgserver.run_sync(postgres_server.database_exists(used["name"]))


def test_server_from_url_reads_credentials_and_admin_database():
    server = pgserver.server_from_url("postgresql+asyncpg://ops:p%40ss@db.internal:6543/admin")
    assert (server.host, server.port, server.superuser, server.password, server.admin_database) == (
        "db.internal",
        6543,
        "ops",
        "p@ss",
        "admin",
    )
    assert server.url("t_1") == "postgresql+asyncpg://ops:p%40ss@db.internal:6543/t_1"
    assert server.folder is None
    server.stop()  # an existing server is never stopped here: a no-op
    with pytest.raises(pgserver.PostgresUnavailable, match="postgresql://"):
        pgserver.server_from_url("mysql://db.internal/admin")


def test_database_names_are_unique_and_fit_postgresql_identifiers():
    long_name = "test_something[" + "x" * 200 + "]"
    names = {pgserver.database_name(long_name) for _ in range(50)}
    assert len(names) == 50
    assert all(len(name) <= 63 and name == name.lower() and name.replace("_", "").isalnum() for name in names)


@pytest.mark.parametrize("machine", ["without PostgreSQL", "with Debian's layout (off PATH)", "with initdb on PATH"])
def test_make_installs_debians_postgresql_only_when_initdb_is_missing(tmp_path, machine):
    fake_bin, debian_root = tmp_path / "bin", tmp_path / "usr-lib-postgresql"
    fake_bin.mkdir()
    calls = tmp_path / "apt-get.calls"
    (fake_bin / "apt-get").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (fake_bin / "apt-get").chmod(0o755)
    if machine.startswith("with Debian"):
        (debian_root / "17" / "bin").mkdir(parents=True)
        (debian_root / "17" / "bin" / "initdb").write_text("")
    if machine.endswith("on PATH"):
        (fake_bin / "initdb").write_text("#!/bin/sh\n")
        (fake_bin / "initdb").chmod(0o755)
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(TESTS.parent), "postgresql", f"POSTGRES_LIB={debian_root}"],
        env={**os.environ, "PATH": f"{fake_bin}:/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    installed = calls.read_text().splitlines() if calls.exists() else []
    if machine == "without PostgreSQL":
        assert installed == ["update -qq", "install -y -qq postgresql"]
    else:
        assert installed == []
