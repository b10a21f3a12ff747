"""Ad Monster's entry point: the `admonster` command, the terminal chat and its slash-commands."""
from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:  # the config module (pydantic-settings) loads only for commands that need it: `tools` starts fast
    from admonster_config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Ad Monster: run Facebook and Instagram ads from chat.")

NO_LLM_ANSWER = (
    "No LLM is configured, so I can't answer free text yet (set ADMONSTER_LLM_BASE_URL and ADMONSTER_LLM_MODEL). "
    "Slash-commands do everything now: /status, /accounts, /use act_…, /campaigns, /pause ID, /resume ID, "
    "/budget ID AMOUNT, /audit, /undo N, /confirm ID, /tool OP {json}; /help lists them all."
)


# ---------------------------------------------------------------------------------------------------------------
# Slash-commands: parsed into a small frozen object, mapped onto registry ops
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlashCommand:
    """`/budget 123 5000 dry_run=true` → command "budget", args ("123", "5000"), options {"dry_run": "true"}."""

    command: str
    args: tuple[str, ...] = ()
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BotCommand:
    """A chat command: the op it runs and the op's fields its positional words fill, in order."""

    op: str
    positional: tuple[str, ...]
    usage: str
    list_fields: tuple[str, ...] = field(default=())


BOT_COMMANDS: dict[str, BotCommand] = {
    "status": BotCommand("account_overview", ("ad_account_id",), "/status [act_…]: the account, its spend and active campaigns"),
    "accounts": BotCommand("list_ad_accounts", (), "/accounts: the ad accounts you can use"),
    "use": BotCommand("select_ad_account", ("ad_account_id",), "/use act_…: select the ad account later commands use"),
    "campaigns": BotCommand("list_campaigns", ("status",), "/campaigns [ACTIVE,PAUSED] [after=…]: list campaigns", ("status",)),
    "pause": BotCommand("pause_campaign", ("campaign_id",), "/pause ID: pause a campaign"),
    "resume": BotCommand("resume_campaign", ("campaign_id",), "/resume ID: resume a campaign (asks to confirm)"),
    "budget": BotCommand("update_campaign", ("campaign_id", "daily_budget"),
                         "/budget ID AMOUNT: set a campaign's daily budget, in minor units (cents for USD, yen for JPY)"),
    "audit": BotCommand("audit_log", ("limit",), "/audit [N]: the last writes, with undo ids"),
    "undo": BotCommand("undo", ("audit_id",), "/undo N: undo the status or budget change of audit entry N"),
    "confirm": BotCommand("confirm", ("confirm",), "/confirm ID: run a call that was waiting for your confirmation"),
}
LOCAL_COMMANDS = {"help": "/help [op]: this list, or one op's arguments",
                  "tool": "/tool OP {json}: call any op with JSON arguments, e.g. /tool list_campaigns {\"limit\": 5}",
                  "quit": "/quit: leave (end of input works too)"}


class SlashSyntaxError(ValueError):
    """The line could not be split into words (an unclosed quote)."""


def parse_slash(line: str) -> SlashCommand:
    """Split a slash line into command, positional words and key=value options."""
    try:
        words = shlex.split(line.strip().lstrip("/"))
    except ValueError as exc:
        raise SlashSyntaxError(f"cannot read that command ({exc})") from None
    if not words:
        return SlashCommand("help")
    head, rest = words[0].lower(), words[1:]
    args = tuple(w for w in rest if not _is_option(w))
    options = tuple(tuple(w.split("=", 1)) for w in rest if _is_option(w))
    return SlashCommand(head, args, options)  # type: ignore[arg-type]


def _is_option(word: str) -> bool:
    key = word.split("=", 1)[0]
    return "=" in word and key.isidentifier()


def slash_to_call(command: SlashCommand, registry: Any) -> tuple[str, dict[str, Any]]:
    """Map a parsed slash-command onto (op, args) using the registry's argument models."""
    bot = BOT_COMMANDS.get(command.command)
    if bot is not None:
        op, positional, list_fields = bot.op, bot.positional, set(bot.list_fields)
    else:
        spec = registry.get(command.command)
        if spec is None:
            raise SlashSyntaxError(_unknown_command_text(command.command, registry))
        op, positional, list_fields = spec.name, _required_fields(spec), set()
    if len(command.args) > len(positional):
        raise SlashSyntaxError(f"/{command.command} takes {len(positional)} word(s) ({', '.join(positional) or 'none'}), "
                               f"got {len(command.args)}; use key=value for the rest")
    args: dict[str, Any] = {}
    schema_props = _schema_properties(registry, op)
    for name, raw in list(zip(positional, command.args)) + list(command.options):
        args[name] = _coerce(raw, schema_props.get(name, {}), force_list=name in list_fields)
    return op, args


def _required_fields(spec: Any) -> tuple[str, ...]:
    schema = spec.args_model.model_json_schema()
    return tuple(schema.get("required", []))


def _schema_properties(registry: Any, op: str) -> dict[str, Any]:
    spec = registry.get(op)
    return registry.args_schema(spec).get("properties", {}) if spec else {}


def _is_array(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "array" or any(p.get("type") == "array" for p in prop.get("anyOf", []))


def _coerce(raw: str, prop: dict[str, Any], force_list: bool = False) -> Any:
    """A slash word as the op expects it: JSON when it looks like JSON, comma lists for list fields, else text."""
    text = raw.strip()
    if text[:1] in "[{" or text in ("true", "false", "null"):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(text)
            return [str(v) if isinstance(v, int | float) else v for v in value] if isinstance(value, list) and _items_are_text(prop) else value
    if force_list or _is_array(prop):
        return [part.strip().upper() if force_list else part.strip() for part in text.strip("[]").split(",") if part.strip()]
    return text


def _items_are_text(prop: dict[str, Any]) -> bool:
    arrays = [prop] + [p for p in prop.get("anyOf", []) if p.get("type") == "array"]
    return any(p.get("items", {}).get("type") == "string" for p in arrays)


def _unknown_command_text(name: str, registry: Any) -> str:
    import difflib

    known = list(BOT_COMMANDS) + list(LOCAL_COMMANDS) + registry.names()
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"Did you mean {', '.join('/' + c for c in close)}? " if close else ""
    return f"unknown command /{name}. {hint}/help lists the commands"


def help_text(registry: Any) -> str:
    lines = ["Commands:"] + [f"  {c.usage}" for c in BOT_COMMANDS.values()] + [f"  {u}" for u in LOCAL_COMMANDS.values()]
    lines.append("Every op is also a command: /OP word… key=value (e.g. /get_campaign 120210000000000001). Writes accept dry_run=true.")
    lines.append("")
    lines.append(registry.help_text())
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Runtime: store, sandbox or live Graph, the Facebook session
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Runtime:
    settings: Settings
    facebook: Any
    mode: str
    graph_url: str
    account_line: str


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, interface: str = "chat", on_wait: Any = None) -> AsyncIterator[Runtime]:
    """Open the store, start the embedded sandbox (or point at live Facebook), and build the Facebook session.

    ``on_wait(message)`` hears about rate-limit pauses as they start (the chat prints them); each op's answer
    also states the pauses it went through.
    """
    from admonster_store import Store
    from fb_utils import GraphClient, configure_logging
    from fi_facebook import Facebook, record_wait

    def tell_wait(message: str) -> None:
        record_wait(message)
        if on_wait is not None:
            on_wait(message)

    configure_logging(settings.log_level)
    settings.home.mkdir(parents=True, exist_ok=True)
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
    async with contextlib.AsyncExitStack() as stack:
        store = await Store.open(settings.home / "admonster.db", secret_key=secret_key)
        stack.push_async_callback(store.close)
        workspace = await store.ensure_workspace(settings.workspace)
        base_url, token, app_secret = await _connect(settings, store, workspace, stack)
        graph = GraphClient(token, app_secret=app_secret, base_url=base_url, api_version=settings.api_version, on_wait=tell_wait)
        stack.push_async_callback(graph.close)
        facebook = Facebook(store, graph, workspace)
        account_line = await _ensure_selected_account(facebook)
        yield Runtime(settings, facebook, settings.mode, base_url, account_line)


async def _connect(settings: Settings, store: Any, workspace: Any, stack: contextlib.AsyncExitStack) -> tuple[str, str, str | None]:
    if settings.mode == "SANDBOX":
        from fb_sandbox.server import SandboxServer

        server = SandboxServer(db_path=str(settings.sandbox_db or settings.home / "sandbox.db"), seed=True)
        await server.start()
        stack.push_async_callback(server.stop)
        grant = await _sandbox_token(server.url)
        return server.url, grant["access_token"], grant["app_secret"]
    token = settings.access_token.get_secret_value() if settings.access_token else None
    app_secret = settings.app_secret.get_secret_value() if settings.app_secret else None
    from admonster_config import ConfigError

    if token is None:
        stored = await store.load_token(workspace.id)
        if stored is not None:
            token, app_secret = stored.token, stored.app_secret or app_secret
    if not token:
        raise ConfigError("LIVE mode has no Facebook token. Fix: set ADMONSTER_ACCESS_TOKEN (and ADMONSTER_APP_SECRET), "
                          "or unset ADMONSTER_GRAPH_URL to use the embedded sandbox.")
    return settings.graph_url, token, app_secret


async def _sandbox_token(url: str) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/__sandbox/tokens") as resp:
            return await resp.json()


async def _ensure_selected_account(facebook: Any) -> str:
    """Select the first ad account when none is selected; describe the selection for the banner."""
    ws = facebook.workspace.id
    selected = await facebook.store.get_selection(ws, "ad_account")
    from fb_utils import FacebookError

    try:
        if not selected:
            accounts = await facebook.graph.get("me/adaccounts", {"fields": "id", "limit": 1})
            if accounts.get("data"):
                selected = accounts["data"][0]["id"]
                await facebook.select("ad_account", selected)
        if not selected:
            return "no ad account"
        info = await facebook.graph.account_info(selected)
        return f"{info.name} ({selected}) · {info.currency}"
    except FacebookError as error:
        return f"account unavailable: {error.to_text()}"


# ---------------------------------------------------------------------------------------------------------------
# Chat
# ---------------------------------------------------------------------------------------------------------------


class Chat:
    """Reads lines, answers slash-commands through the registry, and says what free text needs."""

    def __init__(self, runtime: Runtime, console: Any) -> None:
        self.runtime = runtime
        self.console = console
        self.facebook = runtime.facebook

    def banner(self) -> None:
        from rich.panel import Panel

        mode = self.runtime.mode
        style = "green" if mode == "SANDBOX" else "bold red"
        where = "embedded sandbox, no real money" if mode == "SANDBOX" else f"{self.runtime.graph_url}: REAL MONEY"
        self.console.print(Panel.fit(f"[{style}]{mode}[/] · {where}\nAccount: {_escape(self.runtime.account_line)}\n"
                                     "Type /help for commands, /quit to leave.", title="Ad Monster"))

    async def answer(self, line: str) -> tuple[str, bool]:
        """The reply to one line, and whether it reports a failure."""
        text = line.strip()
        if not text.startswith("/"):
            return NO_LLM_ANSWER, False
        if text.split(None, 1)[0].lower() == "/tool":
            return await self._tool(text)
        try:
            command = parse_slash(text)
            if command.command == "help":
                return self._help(command), False
            op, args = slash_to_call(command, self.facebook.registry)
        except SlashSyntaxError as exc:
            return f"ERROR validation: {exc}. Fix: /help shows how to write each command.", True
        if op == "confirm":
            result = await self.facebook.call("confirm", args, interface="chat")
        else:
            result = await self.facebook.call(op, args, interface="chat")
        return result.text, not result.ok

    def _help(self, command: SlashCommand) -> str:
        if command.args:
            spec = self.facebook.registry.get(command.args[0].lstrip("/"))
            if spec is not None:
                return self.facebook.registry.op_help(spec).text
        return help_text(self.facebook.registry)

    async def _tool(self, line: str) -> tuple[str, bool]:
        """`/tool OP {json}`: the rest of the line after the op is the JSON arguments, taken verbatim."""
        parts = line.split(None, 2)
        if len(parts) < 2:
            return "ERROR validation: /tool needs an op. Fix: /tool list_campaigns {\"limit\": 5}", True
        result = await self.facebook.call(parts[1], parts[2] if len(parts) > 2 else None, interface="chat")
        return result.text, not result.ok

    async def run(self, lines: Iterator[str] | None = None) -> None:
        self.banner()
        for line in lines if lines is not None else self._read_lines():
            if line.strip().lower() in ("/quit", "/exit", "quit", "exit"):
                break
            if not line.strip():
                continue
            reply, failed = await self.answer(line)
            self.console.print(_escape(reply), style="red" if failed else None, highlight=False)

    def _read_lines(self) -> Iterator[str]:
        interactive = sys.stdin.isatty()
        while True:
            try:
                line = self.console.input("[bold cyan]you>[/] ") if interactive else sys.stdin.readline()
            except (EOFError, KeyboardInterrupt):
                return
            if not interactive and line == "":
                return
            yield line


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


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
def chat(workspace: str = typer.Option(None, help="Workspace name (default: ADMONSTER_WORKSPACE or 'default').")) -> None:
    """Chat with Ad Monster in the terminal (reads piped standard input too, and exits at its end)."""
    from rich.console import Console

    settings = _settings_or_exit(**({"workspace": workspace} if workspace else {}))
    console = Console(highlight=False, soft_wrap=True)

    async def run() -> None:
        async with open_runtime(settings, "chat", on_wait=lambda message: console.print(f"… {message}", style="yellow")) as runtime:
            await Chat(runtime, console).run()

    _run_or_exit(run())


def _run_or_exit(coro: Any) -> None:
    from admonster_config import ConfigError
    from fb_utils import FacebookError

    try:
        asyncio.run(coro)
    except ConfigError as exc:
        typer.echo(f"ERROR config: {exc}", err=True)
        raise typer.Exit(2) from None
    except FacebookError as exc:
        typer.echo(exc.to_text(), err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"ERROR system: {exc}. Fix: check ADMONSTER_HOME is writable and the port is free.", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def call(op: str = typer.Argument(..., help="The op name, or help."),
         args: str = typer.Argument("{}", help="The op's arguments as JSON."),
         json_output: bool = typer.Option(False, "--json", help="Print the result's data as JSON instead of its text.")) -> None:
    """Run one op, as the `facebook` tool would, and print its answer."""
    settings = _settings_or_exit()
    exit_code = 0

    async def run() -> None:
        nonlocal exit_code
        async with open_runtime(settings, "cli") as runtime:
            result = await runtime.facebook.call(op, args, interface="cli")
            typer.echo(json.dumps(result.data, indent=2, default=str) if json_output else result.text)
            exit_code = 0 if result.ok else 1

    _run_or_exit(run())
    raise typer.Exit(exit_code)


@app.command()
def tools(format: str = typer.Option("openai", "--format", help="openai or mcp."),
          tools_mode: str = typer.Option("single", "--tools", help="single (the facebook tool), per-op, or both.")) -> None:
    """Print the tool schemas generated from the op registry."""
    if format not in ("openai", "mcp") or tools_mode not in ("single", "per-op", "both"):
        typer.echo("ERROR validation: --format must be openai or mcp and --tools single, per-op or both. "
                   "Fix: e.g. admonster tools --format openai --tools both", err=True)
        raise typer.Exit(2)
    from fi_facebook import REGISTRY

    schema = REGISTRY.openai_tools(tools_mode) if format == "openai" else REGISTRY.mcp_tools()
    typer.echo(json.dumps(schema, indent=2))


@app.command()
def sandbox(port: int = typer.Option(8765, help="Port on 127.0.0.1."),
            db: str = typer.Option(None, help="SQLite file for its state (default: $ADMONSTER_HOME/sandbox.db); :memory: for none."),
            host: str = typer.Option("127.0.0.1", help="Interface to listen on (loopback by default).")) -> None:
    """Run the Graph API sandbox alone, so any client can be pointed at it."""
    from fb_sandbox.__main__ import main as sandbox_main

    settings = _settings_or_exit()
    settings.home.mkdir(parents=True, exist_ok=True)
    raise typer.Exit(sandbox_main(["--port", str(port), "--host", host, "--db", db or str(settings.sandbox_db or settings.home / "sandbox.db")]))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
