"""A throwaway PostgreSQL server for the tests (issue 21, item 4).

`start_server()` runs Debian's `initdb` into a fresh temporary folder and `pg_ctl start`s it on a free loopback port,
with its unix socket in that folder and durability off (fsync, full_page_writes, synchronous_commit: the data dies with
the session anyway); `PostgresServer.stop()` stops it (`pg_ctl stop -m immediate`) and removes the folder. initdb and
pg_ctl refuse to run as root, so as root they run as the `postgres` user (which Debian's package creates) in a folder
that user owns. `make test` installs the package when the machine lacks it; `find_binaries()` looks on PATH, then in
/usr/lib/postgresql/<version>/bin (where Debian puts them, off PATH).

`ADMONSTER_TEST_DATABASE_URL=postgresql://user[:password]@host:port/dbname` points the tests at an existing server
instead (the user must be allowed to CREATE DATABASE); nothing is started then.

The data folder is its own temporary folder (prefix `admonster-pg-`), never under pytest's basetemp: the suite's
end-of-session scans of Ad Monster homes (tests/conftest.py) never walk into it. A folder left by a session that was
killed (its owner process is gone) is stopped and removed by the next session that starts a server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

TEST_DATABASE_URL_ENV = "ADMONSTER_TEST_DATABASE_URL"
FOLDER_PREFIX = "admonster-pg-"
SUPERUSER = "postgres"
DEBIAN_ROOT = "/usr/lib/postgresql"  # Debian's packages install each major version's programs in <root>/<version>/bin
MISSING = (
    "PostgreSQL's initdb and pg_ctl were not found (PATH, /usr/lib/postgresql/*/bin): run `make test`, which "
    "installs Debian's postgresql package, or set ADMONSTER_TEST_DATABASE_URL to an existing server"
)

# Settings for a server whose data is thrown away: durability off for speed, loopback only, small memory.
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "shared_buffers": "32MB",
    "max_connections": "100",
    "log_min_messages": "warning",
}
# Trust, and only from loopback or the socket in the server's own 0700 folder.
PG_HBA = """\
local all all trust
host  all all 127.0.0.1/32 trust
"""


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be found or started here; the message is one line that says what to do."""


def find_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then the newest /usr/lib/postgresql/<version>/bin."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    versions = []
    for folder in glob.glob(f"{DEBIAN_ROOT}/*/bin"):
        version = Path(folder).parent.name
        if os.access(f"{folder}/initdb", os.X_OK) and os.access(f"{folder}/pg_ctl", os.X_OK) and version.isdigit():
            versions.append((int(version), Path(folder)))
    return max(versions)[1] if versions else None


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class PostgresServer:
    """A PostgreSQL server the tests may create databases on: where it is, who is superuser, and (when this session
    started it) how to stop it."""

    host: str
    port: int
    superuser: str = SUPERUSER
    password: str | None = None
    admin_database: str = "postgres"
    folder: Path | None = None  # None: an existing server (ADMONSTER_TEST_DATABASE_URL), never stopped here
    binaries: Path | None = None
    run_as: str | None = None  # the OS user initdb/pg_ctl run as (the postgres user when we are root)

    def url(self, dbname: str, driver: str = "postgresql+asyncpg") -> str:
        """A SQLAlchemy URL for `dbname` on this server (`driver="postgresql"` gives a plain libpq/asyncpg DSN)."""
        credentials = quote(self.superuser, safe="")
        if self.password:
            credentials += ":" + quote(self.password, safe="")
        return f"{driver}://{credentials}@{self.host}:{self.port}/{quote(dbname, safe='')}"

    @property
    def data_folder(self) -> Path | None:
        return self.folder / "data" if self.folder else None

    @property
    def socket_folder(self) -> Path | None:
        return self.folder / "socket" if self.folder else None

    async def connect(self, dbname: str | None = None):
        """An asyncpg connection to `dbname` (the admin database by default) as the superuser."""
        import asyncpg

        return await asyncpg.connect(
            host=self.host,
            port=self.port,
            user=self.superuser,
            password=self.password,
            database=dbname or self.admin_database,
            timeout=10,
        )

    async def create_database(self, name: str) -> None:
        """A new, empty database made from template0."""
        connection = await self.connect()
        try:
            await connection.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
        finally:
            await connection.close()

    async def drop_database(self, name: str) -> None:
        """Drop `name`, ending any connection a test left open to it (PostgreSQL 13+: WITH (FORCE))."""
        connection = await self.connect()
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    async def database_exists(self, name: str) -> bool:
        connection = await self.connect()
        try:
            return bool(await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
        finally:
            await connection.close()

    def pause(self) -> None:
        """Stop a server this session started, keeping its data (an outage a test can end with ``resume``)."""
        assert self.folder is not None and self.binaries is not None, "only a server this session started pauses"
        _run(
            [str(self.binaries / "pg_ctl"), "stop", "-D", str(self.data_folder), "-m", "fast", "-w", "-t", "30"],
            run_as=self.run_as,
            cwd=self.folder,
        )

    def resume(self) -> None:
        """Start a paused server again on its port and wait until it accepts connections."""
        assert self.folder is not None and self.binaries is not None, "only a server this session started resumes"
        _run(
            [
                str(self.binaries / "pg_ctl"),
                "start",
                "-D",
                str(self.data_folder),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.folder / "server.log"),
                "-o",
                f"-p {self.port}",
            ],
            run_as=self.run_as,
            cwd=self.folder,
        )
        _wait_until_accepting(self)

    def stop(self) -> None:
        """Stop a server this session started (immediately: its data is thrown away) and remove its folder. Safe to
        call twice; does nothing for an existing server."""
        if self.folder is None:
            return
        if self.data_folder.is_dir() and (self.data_folder / "postmaster.pid").exists():
            _run(
                [
                    str(self.binaries / "pg_ctl"),
                    "stop",
                    "-D",
                    str(self.data_folder),
                    "-m",
                    "immediate",
                    "-w",
                    "-t",
                    "30",
                ],
                run_as=self.run_as,
                cwd=self.folder,
                check=False,
            )
        shutil.rmtree(self.folder, ignore_errors=True)


def _run(command: list[str], *, run_as: str | None, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    # As root, drop to the postgres user in the child only (initdb and pg_ctl refuse root); stdin closed so nothing waits.
    extra = {"user": run_as, "group": run_as, "extra_groups": []} if run_as else {}
    done = subprocess.run(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        env={**os.environ, "LC_ALL": "C"},
        **extra,
    )
    if check and done.returncode != 0:
        last = (done.stdout.strip().splitlines() or ["no output"])[-1]
        raise PostgresUnavailable(f"{Path(command[0]).name} failed ({done.returncode}): {last}")
    return done


def _owner_for_root() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise PostgresUnavailable(
            "running as root, and there is no `postgres` user to run initdb as (initdb refuses "
            "root): run `make test`, which installs Debian's postgresql package"
        ) from None
    return SUPERUSER


def remove_abandoned_servers(parent: Path, binaries: Path | None, run_as: str | None) -> list[Path]:
    """Stop and remove servers left in `parent` by sessions that were killed (their owner process is gone)."""
    removed = []
    for folder in parent.glob(FOLDER_PREFIX + "*"):
        with contextlib.suppress(OSError, ValueError):
            owner = int((folder / "owner.pid").read_text().strip())
            if _process_alive(owner):
                continue
            abandoned = PostgresServer(host="127.0.0.1", port=0, folder=folder, binaries=binaries, run_as=run_as)
            if binaries is not None:
                abandoned.stop()
            else:
                shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _temporary_parent(run_as: str | None) -> Path:
    parent = Path(tempfile.gettempdir())
    if run_as is None:
        return parent
    # The postgres user must be able to reach its folder; TMPDIR may sit under /root.
    reachable = subprocess.run(["test", "-x", str(parent)], user=run_as, cwd="/", stdin=subprocess.DEVNULL).returncode
    return parent if reachable == 0 else Path("/tmp")


def start_server(*, attempts: int = 3) -> PostgresServer:
    """initdb into a new temporary folder and start a PostgreSQL server on a free loopback port; wait until it
    accepts connections. Raises PostgresUnavailable with one line saying what to do."""
    binaries = find_binaries()
    if binaries is None:
        raise PostgresUnavailable(MISSING)
    run_as = _owner_for_root()
    parent = _temporary_parent(run_as)
    remove_abandoned_servers(parent, binaries, run_as)
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=parent))
    server = PostgresServer(host="127.0.0.1", port=0, folder=folder, binaries=binaries, run_as=run_as)
    try:
        (folder / "owner.pid").write_text(str(os.getpid()))
        server.socket_folder.mkdir(mode=0o700)
        if run_as:
            for path in (folder, server.socket_folder):
                shutil.chown(path, run_as, run_as)
        _run(
            [
                str(binaries / "initdb"),
                "-D",
                str(server.data_folder),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            run_as=run_as,
            cwd=folder,
        )
        settings = {**SERVER_SETTINGS, "unix_socket_directories": f"'{server.socket_folder}'"}
        with open(server.data_folder / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# Ad Monster's test harness (tests/pgserver.py)\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        (server.data_folder / "pg_hba.conf").write_text(PG_HBA)
        if run_as:
            for path in ("postgresql.conf", "pg_hba.conf"):
                shutil.chown(server.data_folder / path, run_as, run_as)
        last_error = ""
        for _ in range(attempts):  # another process may take the free port between the probe and the start
            server.port = _free_loopback_port()
            started = _run(
                [
                    str(binaries / "pg_ctl"),
                    "start",
                    "-D",
                    str(server.data_folder),
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(folder / "server.log"),
                    "-o",
                    f"-p {server.port}",
                ],
                run_as=run_as,
                cwd=folder,
                check=False,
            )
            if started.returncode == 0:
                _wait_until_accepting(server)
                return server
            last_error = _log_tail(folder / "server.log") or started.stdout.strip()
        raise PostgresUnavailable(f"PostgreSQL did not start on a free loopback port: {last_error}")
    except BaseException:
        server.stop()
        raise


def _log_tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else ""
    return ""


def _wait_until_accepting(server: PostgresServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            run_sync(_select_one(server))
            return
        except Exception as error:  # noqa: BLE001 - any refusal means "not yet" until the deadline
            if time.monotonic() > deadline:
                raise PostgresUnavailable(f"PostgreSQL started but refuses connections: {error}") from None
            time.sleep(0.1)


async def _select_one(server: PostgresServer) -> None:
    connection = await server.connect()
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()


def server_from_url(url: str) -> PostgresServer:
    """An existing server named by ADMONSTER_TEST_DATABASE_URL (any postgresql[+driver] URL; its database is the one
    databases are created from)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgres") or not parts.hostname:
        raise PostgresUnavailable(
            f"{TEST_DATABASE_URL_ENV} must look like postgresql://user:password@host:5432/postgres"
        )
    return PostgresServer(
        host=parts.hostname,
        port=parts.port or 5432,
        superuser=unquote(parts.username or SUPERUSER),
        password=unquote(parts.password) if parts.password else None,
        admin_database=parts.path.lstrip("/") or "postgres",
    )


def run_sync(coroutine):
    """Run `coroutine` to completion on its own loop in a worker thread: callable from sync fixtures whether or not
    the test's event loop exists, without replacing it."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def database_name(test_name: str) -> str:
    """A database name unique to one test (and to one xdist worker), within PostgreSQL's 63 characters."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    readable = re.sub(r"[^a-z0-9]+", "_", test_name.lower()).strip("_")[:30]
    return f"t_{worker}_{readable}_{uuid.uuid4().hex[:10]}"[:63]
