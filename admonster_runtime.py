"""One Ad Monster process: settings, store, the embedded sandbox or live Facebook, and a Facebook session per workspace."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from admonster_config import Settings
    from fi_facebook import AppCredentials, Facebook

SANDBOX_AUTOCONNECT = "sandbox_autoconnect"
SANDBOX_USER = "sandbox_user"  # the sandbox demo user a workspace other than `default` signs in as
DEFAULT_WORKSPACE = "default"


class Runtime:
    """Owns the process-wide pieces and hands out one Facebook session per workspace, built from its stored token."""

    def __init__(
        self,
        settings: Settings,
        store: Any,
        *,
        graph_url: str,
        app: AppCredentials | None,
        state_secret: bytes,
        sandbox_url: str | None,
        on_wait: Callable[[str], Any] | None,
    ) -> None:
        from fi_facebook import Connector

        self.settings = settings
        self.store = store
        self.graph_url = graph_url
        self.app = app
        self.sandbox_url = sandbox_url
        self.connector = Connector(store, app, state_secret, graph_url=graph_url, api_version=settings.api_version)
        self.on_wait = on_wait
        self.callback_url: Callable[[], Any] | None = None  # set by the interface that can receive OAuth callbacks
        self.notifier: Any = None
        self._sessions: dict[int, tuple[str, Facebook]] = {}
        self._sessions_lock = asyncio.Lock()
        self._chat_loop: Any = None

    @property
    def mode(self) -> str:
        return "SANDBOX" if self.sandbox_url else "LIVE"

    async def workspace(self, name: str) -> Any:
        return await self.store.ensure_workspace(name)

    async def workspaces(self) -> list[Any]:
        return await self.store.list_workspaces()

    async def facebook_for(self, workspace: Any) -> Facebook:
        """The workspace's Facebook session; rebuilt when its stored token changed, graph-less when not connected.

        One caller at a time: a scheduled job and a request asking at once must share one session, not each build
        (and close) the other's Graph client.
        """
        async with self._sessions_lock:
            return await self._facebook_for(workspace)

    async def _facebook_for(self, workspace: Any) -> Facebook:
        from fb_utils import GraphClient, SingleFlightPolicy
        from fi_facebook import Facebook, record_wait

        token, _kind = await self._token_for(workspace)
        stamp = hashlib.sha256((token or "").encode()).hexdigest()
        cached = self._sessions.get(workspace.id)
        if cached and cached[0] == stamp:
            await cached[1].refresh_selections()  # another request or replica may have selected since
            return cached[1]
        if cached and cached[1].graph is not None:
            await cached[1].graph.close()

        def tell_wait(message: str) -> None:
            record_wait(message)
            if self.on_wait is not None:
                self.on_wait(message)

        graph = None
        if token:
            graph = GraphClient(
                token,
                app_secret=self.app.app_secret if self.app else self._live_app_secret(),
                base_url=self.graph_url,
                api_version=self.settings.api_version,
                on_wait=tell_wait,
                timeout=self.settings.graph_timeout,
                settle_window=self.settings.write_settle_seconds,
            )
        facebook = Facebook(
            self.store,
            graph,
            workspace,
            connector=self.connector,
            callback_url=self.callback_url,
            on_disconnect=self._forget_session,
            clock=self.time_source,
            single_flight=SingleFlightPolicy(self.settings.launch_lease_seconds, self.settings.launch_wait_seconds),
            files_home=self.settings.home,
        )
        self._sessions[workspace.id] = (stamp, facebook)
        if graph is not None:
            await _default_selections(facebook)
        return facebook

    @property
    def time_source(self) -> Callable[[], Any] | None:
        """The clock jobs and automations use when it is not this machine's: the sandbox's, in sandbox mode."""
        return self.sandbox_now if self.sandbox_url else None

    async def now(self) -> datetime:
        """The session clock outside any op (token texts, checks): the sandbox's in sandbox mode, else this machine's."""
        return await self.sandbox_now() if self.sandbox_url else datetime.now(UTC)

    async def sandbox_now(self) -> datetime:
        """The sandbox's simulated time (`GET /__sandbox/clock`): delivery, token expiry and cooldowns follow it."""
        answer = await _sandbox_call(self.sandbox_url, "GET", "clock")
        return datetime.fromtimestamp(float(answer["epoch"]), UTC)

    async def version_warning(self) -> str | None:
        """One line when the configured Graph API version ends within 90 days on the session clock, else None."""
        from fb_utils import api_version_warning

        return api_version_warning(self.settings.api_version, (await self.now()).date())

    def _live_app_secret(self) -> str | None:
        secret = self.settings.app_secret
        return secret.get_secret_value() if secret else None

    async def _token_for(self, workspace: Any) -> tuple[str | None, str | None]:
        stored = await self.store.load_token(workspace.id)
        if stored is not None:
            return stored.token, stored.kind
        if self.sandbox_url and await self.store.get_setting(workspace.id, SANDBOX_AUTOCONNECT, True):
            grant = await _sandbox_call(self.sandbox_url, "POST", "tokens", await self._sandbox_user(workspace) or None)
            if (
                "access_token" not in grant and workspace.name != DEFAULT_WORKSPACE
            ):  # the sandbox was reset: a new world
                await self.store.set_setting(workspace.id, SANDBOX_USER, None)
                grant = await _sandbox_call(self.sandbox_url, "POST", "tokens", await self._sandbox_user(workspace))
            await self.connector.store_checked_token(workspace.id, grant["access_token"], kind="sandbox")
            return grant["access_token"], "sandbox"
        if not self.sandbox_url and self.settings.access_token and workspace.name == self.settings.workspace:
            return self.settings.access_token.get_secret_value(), "environment"
        return None, None

    async def _sandbox_user(self, workspace: Any) -> dict:
        """Who the workspace signs in as in sandbox mode: `default` is the seeded Demo User; every other workspace
        gets a demo world of its own (`POST /__sandbox/users`: user, business, ad accounts, page), made once, so
        workspaces never share sandbox objects."""
        if workspace.name == DEFAULT_WORKSPACE:
            return {}
        user_id = await self.store.get_setting(workspace.id, SANDBOX_USER, None)
        if not user_id:
            label = re.sub(r"[^A-Za-z0-9_.-]", "-", workspace.name)[:40] or f"ws{workspace.id}"
            user_id = (await _sandbox_call(self.sandbox_url, "POST", "users", {"label": label}))["user_id"]
            await self.store.set_setting(workspace.id, SANDBOX_USER, user_id)
        return {"user": user_id}

    async def _forget_session(self, workspace: Any) -> None:
        cached = self._sessions.pop(workspace.id, None)
        if cached and cached[1].graph is not None:
            await cached[1].graph.close()
        if self.sandbox_url:  # stay disconnected: do not sign the demo user in again behind the person's back
            await self.store.set_setting(workspace.id, SANDBOX_AUTOCONNECT, False)

    async def token_status(self, workspace: Any) -> Any:
        """The jobs' view of a workspace's token (admonster_jobs.TokenStatus)."""
        from admonster_jobs import TokenStatus

        health = await self.connector.status(workspace.id)
        return TokenStatus(
            valid=health.valid,
            expires_at=health.expires_at,
            scopes=health.scopes,
            missing_scopes=health.missing_scopes,
            user_id=health.user_id,
            app_id=health.app_id,
            reason=health.reason,
            checked_at=await self.now(),
        )

    def chat_loop(self) -> Any:
        """The LLM chat loop, built once from the settings (its HTTP client is shared by every conversation)."""
        if self._chat_loop is None:
            from admonster_llm import ChatLoop, LLMClient

            self._chat_loop = ChatLoop(
                self.facebook_for,
                self.store,
                LLMClient.from_settings(self.settings),
                max_rounds=self.settings.llm_max_tool_rounds,
            )
        return self._chat_loop

    async def close(self) -> None:
        if self._chat_loop is not None:
            await self._chat_loop.llm.close()
        for _, facebook in self._sessions.values():
            if facebook.graph is not None:
                await facebook.graph.close()
        self._sessions.clear()


async def _default_selections(facebook: Facebook) -> None:
    """A new connection starts with its first ad account selected, and its page when it has exactly one."""
    from fb_utils import FacebookError

    chosen = await facebook.selections()
    try:
        if not chosen.get("ad_account") and facebook.graph is not None:
            accounts = await facebook.graph.get("me/adaccounts", {"fields": "id", "limit": 1})
            if accounts.get("data"):
                await facebook.select("ad_account", accounts["data"][0]["id"])
        if not chosen.get("page") and facebook.registry.get("list_pages"):
            await facebook.call("list_pages", interface="system")
    except FacebookError:  # selections are a convenience: the ops say what is missing when they need it
        pass


async def _sandbox_call(url: str | None, method: str, path: str, json: dict | None = None) -> dict:
    import aiohttp

    if url is None:
        raise RuntimeError(f"no sandbox to call for {path}: the runtime is LIVE")

    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"{url}/__sandbox/{path}", json=json) as resp:
            return await resp.json()


def dialog_host_for(graph_url: str) -> str:
    """Facebook serves its login dialog on www.facebook.com; any other Graph host (a sandbox) serves its own."""
    import urllib.parse

    parts = urllib.parse.urlsplit(graph_url)
    if parts.hostname and parts.hostname.endswith("graph.facebook.com"):
        return "https://www.facebook.com"
    return f"{parts.scheme}://{parts.netloc}"


def state_secret_for(settings: Settings) -> bytes:
    """The key that signs OAuth states: ADMONSTER_STATE_SECRET, else derived from the token encryption key."""
    configured = getattr(settings, "state_secret", None)
    if configured:
        return configured.get_secret_value().encode()
    if settings.secret_key:
        material = settings.secret_key.get_secret_value().encode()
    else:
        material = (settings.home / "secret.key").read_bytes()
    return hashlib.sha256(b"admonster oauth state\0" + material).digest()


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings, *, on_wait: Callable[[str], Any] | None = None, start_sandbox: bool = True
) -> AsyncIterator[Runtime]:
    """Open the store, start the embedded sandbox (or point at live Facebook), and build the runtime."""
    from admonster_store import open_store, private_db_file, private_folder
    from fb_utils import configure_logging
    from fi_facebook import AppCredentials

    configure_logging(settings.log_level)
    private_folder(settings.home)
    async with contextlib.AsyncExitStack() as stack:
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        sandbox_url, app = None, None
        if settings.mode == "SANDBOX":
            from fb_sandbox.server import SandboxServer

            start = settings.sandbox_clock_start
            sandbox_db = str(settings.sandbox_db or settings.home / "sandbox.db")
            private_db_file(sandbox_db)  # the sandbox holds its (fake) users' tokens: private like the store
            server = SandboxServer(db_path=sandbox_db, seed=True, clock_start=start.timestamp() if start else None)
            sandbox_url = await server.start()
            private_db_file(sandbox_db)
            stack.push_async_callback(server.stop)
            known = await _sandbox_call(sandbox_url, "GET", "app")
            app = AppCredentials(
                known["app_id"],
                known["app_secret"],
                sandbox_url,
                f"{sandbox_url}/{settings.api_version}/dialog/oauth",
                settings.api_version,
            )
        elif settings.app_id and settings.app_secret:
            app = AppCredentials(
                settings.app_id,
                settings.app_secret.get_secret_value(),
                settings.graph_url,
                f"{dialog_host_for(settings.graph_url)}/{settings.api_version}/dialog/oauth",
                settings.api_version,
            )
        runtime = Runtime(
            settings,
            store,
            graph_url=sandbox_url or settings.graph_url,
            app=app,
            state_secret=state_secret_for(settings),
            sandbox_url=sandbox_url,
            on_wait=on_wait,
        )
        stack.push_async_callback(runtime.close)
        from admonster_notify import Notifier

        runtime.notifier = Notifier(store, settings)
        stack.push_async_callback(runtime.notifier.close)
        warning = await runtime.version_warning()
        if warning:  # one plain line at startup when the configured Graph API version ends within 90 days
            import sys

            print(warning, file=sys.stderr)
        yield runtime
