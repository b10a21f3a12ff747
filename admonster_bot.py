"""Ad Monster's entry point: the `admonster` command (the conversation itself is admonster_chat)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import typer

from admonster_chat import BOT_COMMANDS, LOCAL_COMMANDS, Chat

if TYPE_CHECKING:  # the config module (pydantic-settings) loads only for commands that need it: `tools` starts fast
    from admonster_config import Settings

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Ad Monster: run Facebook and Instagram ads from chat."
)

# ---------------------------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------------------------


def _settings_or_exit(**overrides: Any) -> Settings:
    from admonster_config import ConfigError, load_settings

    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(f"ERROR config: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def chat(
    workspace: str = typer.Option(None, help="Workspace name (default: ADMONSTER_WORKSPACE or 'default')."),
) -> None:
    """Chat with Ad Monster in the terminal (reads piped standard input too, exits at its end, with status 1 when a line
    failed)."""
    from rich.console import Console

    from admonster_runtime import open_runtime
    from admonster_server import CallbackListener
    from admonster_terminal import terminal_is_interactive

    settings = _settings_or_exit(**({"workspace": workspace} if workspace else {}))
    interactive = terminal_is_interactive()
    console = Console(highlight=False, soft_wrap=True)
    chatter = console if interactive else Console(highlight=False, soft_wrap=True, stderr=True)  # not an answer
    outcome = {"failed": False}

    async def run() -> None:
        async with open_runtime(
            settings, on_wait=lambda message: chatter.print(f"… {message}", style="yellow")
        ) as runtime:
            session = Chat(runtime, await runtime.workspace(settings.workspace), console)
            session.banner_console = chatter
            # /connect in chat listens on loopback for Facebook's redirect, as long as the link it made is valid
            listener = CallbackListener(runtime, one_shot=False, on_outcome=session.sign_in_finished)
            runtime.callback_url = listener.url
            try:
                outcome["failed"] = await session.run(_prompt(session, settings, console) if interactive else None)
            finally:
                await listener.stop()

    _run_or_exit(run())
    if outcome["failed"] and not interactive:
        raise typer.Exit(1)


def _prompt(session: Chat, settings: Any, console: Any) -> Any:
    """The interactive prompt: history in $ADMONSTER_HOME/terminal_history/<workspace id>.txt (0600, redacted),
    completion of commands, op names and recent ids."""
    from admonster_terminal import PromptInput, chat_completer, history_path, private_history

    registry = session.registry
    commands = {name: command.usage for name, command in BOT_COMMANDS.items()} | dict(LOCAL_COMMANDS)
    return PromptInput(
        history=private_history(history_path(settings.home, session.workspace.id), session.history_line),
        completer=chat_completer(commands, registry.names, session.recent_ids),
        say=lambda text: console.print(text, style="yellow", highlight=False),
    )


def _run_or_exit(coro: Any) -> None:
    from admonster_config import ConfigError
    from admonster_store import StoreError
    from fb_utils import FacebookError

    try:
        asyncio.run(coro)
    except ConfigError as exc:
        typer.echo(f"ERROR config: {exc}", err=True)
        raise typer.Exit(2) from None
    except StoreError as exc:  # the database is down, unreachable, newer than this code, or the key does not fit
        typer.echo(f"ERROR store: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(1) from None
    except FacebookError as exc:
        typer.echo(exc.to_text(), err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"ERROR system: {exc}. Fix: check ADMONSTER_HOME is writable and the port is free.", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def call(
    op: str = typer.Argument(..., help="The op name, or help."),
    args: str = typer.Argument("{}", help="The op's arguments as JSON."),
    json_output: bool = typer.Option(False, "--json", help="Print the result's data as JSON instead of its text."),
) -> None:
    """Run one op, as the `facebook` tool would, and print its answer."""
    settings = _settings_or_exit()
    exit_code = 0

    async def run() -> None:
        nonlocal exit_code
        async with _runtime(settings) as runtime:
            facebook = await runtime.facebook_for(await runtime.workspace(settings.workspace))
            result = await facebook.call(op, args, interface="cli")
            typer.echo(json.dumps(result.data, indent=2, default=str) if json_output else result.text)
            exit_code = 0 if result.ok else 1

    _run_or_exit(run())
    raise typer.Exit(exit_code)


def _runtime(settings: Any) -> Any:
    from admonster_runtime import open_runtime

    return open_runtime(settings, on_wait=lambda message: typer.echo(f"… {message}", err=True))


TOOLSETS_HELP = (
    "Toolsets (task groups) whose ops get their own tool, comma-separated: e.g. campaigns,insights_reports; "
    "'default' is the core ops (the default), 'all' every op. `admonster mcp` lists them via list_toolsets."
)


def _tool_selection_or_exit(command: str, tools_mode: str, toolsets: str | None) -> tuple[str, ...] | None:
    from admonster_tools import TOOL_MODES, parse_toolsets
    from fb_utils import ValidationError

    if tools_mode not in TOOL_MODES:
        typer.echo(
            f"ERROR validation: --tools must be single, per-op or both. Fix: e.g. {command} --tools both", err=True
        )
        raise typer.Exit(2)
    try:
        return parse_toolsets(toolsets)
    except ValidationError as error:
        typer.echo(error.to_text(), err=True)
        raise typer.Exit(2) from None


@app.command()
def tools(
    format: str = typer.Option("openai", "--format", help="openai or mcp."),
    tools_mode: str = typer.Option(
        None,
        "--tools",
        help="single (the facebook tool), per-op, or both "
        "(default: single for openai, both for mcp, as `admonster mcp` serves).",
    ),
    toolsets: str = typer.Option(None, "--toolsets", help=TOOLSETS_HELP),
    read_only: bool = typer.Option(False, "--read-only", help="Only ops that read."),
) -> None:
    """Print the tool schemas generated from the op registry: with --format mcp, exactly what `admonster mcp` lists
    with the same flags."""
    if format not in ("openai", "mcp"):
        typer.echo(
            "ERROR validation: --format must be openai or mcp. Fix: e.g. admonster tools --format openai --tools both",
            err=True,
        )
        raise typer.Exit(2)
    mode = tools_mode or ("single" if format == "openai" else "both")
    chosen = _tool_selection_or_exit("admonster tools", mode, toolsets)
    from admonster_tools import ToolSelection, openai_tools, tool_list  # the builder `admonster mcp` serves from

    if format == "openai":
        schema = openai_tools(mode, toolsets=chosen, read_only=read_only)
    else:
        schema = tool_list(ToolSelection(mode, chosen, read_only))
    typer.echo(json.dumps(schema, indent=2, ensure_ascii=False))


@app.command()
def mcp(
    tools_mode: str = typer.Option(
        "both", "--tools", help="single (the facebook tool), per-op (one tool per op), or both."
    ),
    toolsets: str = typer.Option(None, "--toolsets", help=TOOLSETS_HELP),
    read_only: bool = typer.Option(False, "--read-only", help="Serve only ops that read; any other op is refused."),
    workspace: str = typer.Option(None, help="Workspace to serve (default ADMONSTER_WORKSPACE or 'default')."),
) -> None:
    """Serve Ad Monster's tools to an MCP client over stdio (stdout carries only the protocol; logs go to stderr).
    By default: the facebook tool, find_ops, list_toolsets, enable_toolset and the core ops; enable_toolset adds
    a toolset's tools during the session."""
    from admonster_mcp import serve_stdio

    chosen = _tool_selection_or_exit("admonster mcp", tools_mode, toolsets)
    settings = _settings_or_exit(**({"workspace": workspace} if workspace else {}))
    _run_or_exit(
        serve_stdio(settings, mode=tools_mode, workspace=settings.workspace, toolsets=chosen, read_only=read_only)
    )


@app.command()
def sandbox(
    port: int = typer.Option(8765, help="Port on 127.0.0.1."),
    db: str = typer.Option(
        None, help="SQLite file for its state (default: $ADMONSTER_HOME/sandbox.db); :memory: for none."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default)."),
) -> None:
    """Run the Graph API sandbox alone, so any client can be pointed at it."""
    from admonster_store import private_folder
    from fb_sandbox.__main__ import main as sandbox_main

    settings = _settings_or_exit()
    private_folder(settings.home)
    start = settings.sandbox_clock_start
    raise typer.Exit(
        sandbox_main(
            [
                "--port",
                str(port),
                "--host",
                host,
                "--db",
                db or str(settings.sandbox_db or settings.home / "sandbox.db"),
                *(["--clock-start", str(start.timestamp())] if start else []),
            ]
        )
    )


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to listen on (default ADMONSTER_SERVE_HOST, 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default ADMONSTER_SERVE_PORT, 8787)."),
) -> None:
    """Run the HTTP server: POST /v1/tools/facebook, the OAuth callback, /healthz, /openapi.json, and the scheduled jobs."""
    from admonster_server import serve as run_server

    overrides = {name: value for name, value in (("serve_host", host), ("serve_port", port)) if value is not None}
    settings = _settings_or_exit(**overrides)
    listen_host, listen_port = settings.serve_host, settings.serve_port

    async def run() -> None:
        async with _runtime(settings) as runtime:

            def ready(bound: int) -> None:
                if settings.public_url_is_derived:  # port 0: the URL names the port the system picked
                    from admonster_config import listening_url

                    settings.public_url = listening_url(listen_host, bound)
                typer.echo(
                    f"Ad Monster {runtime.mode} serving on http://{listen_host}:{bound} "
                    f"(OAuth callback {settings.public_url.rstrip('/')}/oauth/facebook/callback); Ctrl-C to stop."
                )

            await run_server(runtime, listen_host, listen_port, ready=ready)

    _run_or_exit(run())


@app.command()
def connect(
    workspace: str = typer.Option(None, help="Workspace to connect (default ADMONSTER_WORKSPACE)."),
    timeout: float = typer.Option(300.0, help="Seconds to wait for the sign-in before giving up."),
    switch: bool = typer.Option(False, "--switch", help="Allow moving the workspace to another Facebook user."),
) -> None:
    """Connect Facebook: prints a sign-in link and waits on loopback for Facebook's redirect (5 minutes at most)."""
    from admonster_server import CallbackListener

    settings = _settings_or_exit(**({"workspace": workspace} if workspace else {}))
    outcome = {"ok": False}

    async def run() -> None:
        async with _runtime(settings) as runtime:
            listener = CallbackListener(runtime, timeout=timeout)
            runtime.callback_url = listener.url
            facebook = await runtime.facebook_for(await runtime.workspace(settings.workspace))
            result = await facebook.call("connect", {"switch": switch} if switch else None, interface="cli")
            typer.echo(result.text)
            if not result.ok:
                return
            typer.echo(f"Waiting for the sign-in on {listener.redirect_uri} …")
            await listener.done.wait()
            await listener.stop()
            outcome["ok"] = listener.succeeded
            typer.echo(
                "Connected." if listener.succeeded else "Not connected: the link was not completed in time.",
                err=not listener.succeeded,
            )

    _run_or_exit(run())
    raise typer.Exit(0 if outcome["ok"] else 1)


@app.command()
def disconnect(workspace: str = typer.Option(None, help="Workspace to disconnect.")) -> None:
    """Delete this workspace's Facebook token; revoke Ad Monster's permissions unless another workspace uses the same user."""
    _one_op("disconnect", workspace)


def _one_op(op: str, workspace: str | None, args: Any = None) -> None:
    settings = _settings_or_exit(**({"workspace": workspace} if workspace else {}))
    outcome = {"ok": False}

    async def run() -> None:
        async with _runtime(settings) as runtime:
            facebook = await runtime.facebook_for(await runtime.workspace(settings.workspace))
            result = await facebook.call(op, args, interface="cli")
            typer.echo(result.text, err=not result.ok)
            outcome["ok"] = result.ok

    _run_or_exit(run())
    raise typer.Exit(0 if outcome["ok"] else 1)


token_app = typer.Typer(help="The workspace's Facebook token.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("set")
def token_set(
    workspace: str = typer.Option(None, help="Workspace to store the token for."),
    kind: str = typer.Option("system_user", help="What the token is: system_user or user."),
) -> None:
    """Read a token from standard input (never the command line), check it with Facebook, then store it encrypted."""
    settings = _settings_or_exit(**({"workspace": workspace} if workspace else {}))
    token = _read_secret("Paste the Facebook access token (input hidden): ")
    if not token:
        typer.echo(
            "ERROR validation: no token on standard input. Fix: pipe it in (admonster token set < token.txt) "
            "or paste it at the prompt.",
            err=True,
        )
        raise typer.Exit(2)
    outcome = {"ok": False}

    async def run() -> None:
        from fb_utils import FacebookError

        async with _runtime(settings) as runtime:
            ws = await runtime.workspace(settings.workspace)
            try:
                health = await runtime.connector.store_checked_token(ws.id, token, kind=kind)
            except FacebookError as error:
                typer.echo(error.to_text(), err=True)
                return
            if runtime.sandbox_url:
                await runtime.store.set_setting(ws.id, "sandbox_autoconnect", False)
            typer.echo(f"Stored. {health.describe(await runtime.now())}")
            outcome["ok"] = True

    _run_or_exit(run())
    raise typer.Exit(0 if outcome["ok"] else 1)


def _read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt).strip()
    return sys.stdin.read().strip()


@token_app.command("status")
def token_status(workspace: str = typer.Option(None, help="Workspace to check.")) -> None:
    """Is the token valid, when does it expire, which scopes does it have and which are missing."""
    _one_op("token_status", workspace)


workspace_app = typer.Typer(
    help="Workspaces: isolated users or teams, each with its own token, selections and logs.", no_args_is_help=True
)
app.add_typer(workspace_app, name="workspace")


@workspace_app.command("create")
def workspace_create(name: str = typer.Argument(..., help="Workspace name.")) -> None:
    """Create a workspace and print its first API key, once (an existing workspace is left as it is)."""
    name = name.strip()
    if not name:
        typer.echo("ERROR validation: the workspace name is empty. Fix: admonster workspace create acme", err=True)
        raise typer.Exit(2)
    outcome = {"exists": False}

    async def run(store: Any) -> None:
        if await store.find_workspace(name) is not None:
            outcome["exists"] = True
            typer.echo(
                f"ERROR validation: workspace {name} exists. Fix: use `admonster workspace keys create {name}` "
                "for another key",
                err=True,
            )
            return
        ws = await store.ensure_workspace(name)
        key = await store.create_api_key(ws.id)
        typer.echo(
            f"Workspace {name!r} (id {ws.id}). Its API key, shown only now (Ad Monster keeps only a hash):\n{key}\n"
            "Send it as `Authorization: Bearer <key>` to admonster serve."
        )

    _with_store(run)
    if outcome["exists"]:
        raise typer.Exit(1)


@workspace_app.command("mcp")
def workspace_mcp(
    name: str = typer.Argument(..., help="Workspace name."),
    toolsets: str = typer.Option(None, "--toolsets", help=TOOLSETS_HELP),
    read_only: bool = typer.Option(False, "--read-only/--read-write", help="Only ops that read."),
) -> None:
    """What /mcp on `admonster serve` lists for this workspace's keys (its toolsets, read-only); the same flags as
    `admonster mcp`. Without options it returns to the default (core ops, read-write)."""
    from admonster_tools import MCP_SETTING

    chosen = _tool_selection_or_exit("admonster workspace mcp", "both", toolsets)

    async def run(store: Any) -> None:
        ws = await _existing_workspace(store, name)
        value = {"toolsets": list(chosen or ()), "read_only": read_only} if chosen or read_only else None
        await store.set_setting(ws.id, MCP_SETTING, value)
        typer.echo(
            f"/mcp for workspace {name!r}: toolsets {', '.join(chosen) if chosen else 'default (core ops)'}"
            f"{', read-only' if read_only else ''}."
        )

    _with_store(run)


def _with_store(action: Callable[[Any], Awaitable[None]]) -> None:
    """Open the home's store, run `action` with it, close it; errors as one line."""
    settings = _settings_or_exit()

    async def run() -> None:
        from admonster_store import open_store, private_folder

        private_folder(settings.home)
        async with await open_store(settings) as store:
            await action(store)

    _run_or_exit(run())


keys_app = typer.Typer(help="A workspace's API keys: list, create, rotate and revoke them.", no_args_is_help=True)
workspace_app.add_typer(keys_app, name="keys")


async def _existing_workspace(store: Any, name: str) -> Any:
    workspace = await store.find_workspace(name)
    if workspace is None:
        typer.echo(
            f"ERROR not_found: there is no workspace {name.strip()!r}. Fix: `admonster workspace list` shows them; "
            f"`admonster workspace create {name.strip()}` makes it",
            err=True,
        )
        raise typer.Exit(1)
    return workspace


@keys_app.command("list")
def keys_list(workspace: str = typer.Argument(..., help="Workspace name.")) -> None:
    """The workspace's keys: public id, created, revoked (never the secret)."""

    async def run(store: Any) -> None:
        ws = await _existing_workspace(store, workspace)
        keys = await store.list_api_keys(ws.id)
        if not keys:
            typer.echo(f"Workspace {ws.name!r} has no API keys. Make one: admonster workspace keys create {ws.name}")
        for key in keys:
            typer.echo(
                f"{key.key_id}…\tcreated {key.created_at}\t"
                + (f"revoked {key.revoked_at}" if key.revoked_at else "valid")
            )

    _with_store(run)


@keys_app.command("create")
def keys_create(workspace: str = typer.Argument(..., help="Workspace name.")) -> None:
    """Another API key for the workspace, printed once."""

    async def run(store: Any) -> None:
        ws = await _existing_workspace(store, workspace)
        key = await store.create_api_key(ws.id)
        typer.echo(f"New API key for {ws.name!r}, shown only now (Ad Monster keeps only a hash):\n{key}")

    _with_store(run)


@keys_app.command("rotate")
def keys_rotate(
    workspace: str = typer.Argument(..., help="Workspace name."),
    key_id: str = typer.Argument(..., help="The key to replace: its id from `keys list` (or the whole key)."),
) -> None:
    """Replace a key: a new one is made and the old one revoked in one step; the new key is printed once."""

    async def run(store: Any) -> None:
        ws = await _existing_workspace(store, workspace)
        rotated = await store.rotate_api_key(ws.id, key_id)
        if rotated is None:
            _no_such_key(ws.name, key_id)
        key, old = rotated
        typer.echo(f"Revoked {old.key_id}…. New API key for {ws.name!r}, shown only now:\n{key}")

    _with_store(run)


@keys_app.command("revoke")
def keys_revoke(
    workspace: str = typer.Argument(..., help="Workspace name."),
    key_id: str = typer.Argument(..., help="The key: its id from `keys list` (or the whole key)."),
) -> None:
    """Revoke a key: requests with it are refused (401) from now on."""

    async def run(store: Any) -> None:
        ws = await _existing_workspace(store, workspace)
        revoked = await store.revoke_api_key(ws.id, key_id)
        if revoked is None:
            _no_such_key(ws.name, key_id)
        typer.echo(f"Revoked {revoked.key_id}… of {ws.name!r}: requests with it now get 401.")

    _with_store(run)


def _no_such_key(workspace: str, key_id: str) -> None:
    typer.echo(
        f"ERROR not_found: workspace {workspace!r} has no valid key {key_id.strip()[:24]!r}. "
        f"Fix: `admonster workspace keys list {workspace}` shows its key ids",
        err=True,
    )
    raise typer.Exit(1)


@workspace_app.command("list")
def workspace_list() -> None:
    """List the workspaces."""

    async def run(store: Any) -> None:
        for ws in await store.list_workspaces():
            typer.echo(f"{ws.id}\t{ws.name}\t{ws.created_at}")

    _with_store(run)


jobs_app = typer.Typer(
    help="Scheduled jobs (they run inside admonster serve; run one now with `jobs run`).", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("run")
def jobs_run(name: str = typer.Argument(..., help="The job, e.g. token_check.")) -> None:
    """Run one job now and print what it did."""
    settings = _settings_or_exit()
    outcome = {"ok": False}

    async def run() -> None:
        from admonster_jobs import JobContext, run_job

        async with _runtime(settings) as runtime:
            context = JobContext(
                store=runtime.store,
                notifier=runtime.notifier,
                settings=settings,
                sessions=runtime,
                time_source=runtime.time_source,
            )
            try:
                result = await run_job(name, context)
            except ValueError as exc:
                typer.echo(f"ERROR validation: {exc}", err=True)
                return
            typer.echo("\n".join([result.summary] + [f"  {line}" for line in result.details]))
            outcome["ok"] = result.ok

    _run_or_exit(run())
    raise typer.Exit(0 if outcome["ok"] else 1)


@jobs_app.command("list")
def jobs_list() -> None:
    """List the jobs and their schedules."""
    from admonster_jobs import JOBS

    for job in JOBS.values():
        typer.echo(f"{job.name}\t{job.schedule}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
