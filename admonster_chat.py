"""The conversation: slash-commands parsed and mapped onto registry ops, help for people, and ``Chat`` (one workspace's
conversation, used by the terminal chat and by the server's /v1/chat routes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from admonster_terminal import RecentIds
from fb_utils import closest_names

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
    group: str | None = None  # the TaskGroup value, only for a command whose op is not in the registry (/confirm)


BOT_COMMANDS: dict[str, BotCommand] = {
    "status": BotCommand(
        "account_overview",
        ("ad_account_id",),
        "/status [act_…]: spend today and yesterday, each delivering campaign's daily budget, and what needs attention",
    ),
    "accounts": BotCommand("list_ad_accounts", (), "/accounts: the ad accounts you can use"),
    "use": BotCommand("select_ad_account", ("ad_account_id",), "/use act_…: select the ad account later commands use"),
    "campaigns": BotCommand(
        "list_campaigns", ("status",), "/campaigns [ACTIVE,PAUSED] [after=…]: list campaigns", ("status",)
    ),
    "adsets": BotCommand(
        "list_adsets", ("campaign_id",), "/adsets [CAMPAIGN_ID]: list ad sets (of a campaign, or of the account)"
    ),
    "interests": BotCommand(
        "search_interests", ("query",), "/interests WORDS: find interests to target, with audience sizes"
    ),
    "places": BotCommand(
        "search_locations", ("query",), "/places NAME: find countries, regions, cities and zips to target"
    ),
    "placements": BotCommand(
        "recommend_placements",
        ("creative_type", "objective"),
        "/placements image|video|carousel [OBJECTIVE]: where such ads should run, and why",
    ),
    "pause": BotCommand("pause_campaign", ("campaign_id",), "/pause ID: pause a campaign"),
    "resume": BotCommand("resume_campaign", ("campaign_id",), "/resume ID: resume a campaign (asks to confirm)"),
    "budget": BotCommand(
        "update_campaign",
        ("campaign_id", "daily_budget"),
        "/budget ID AMOUNT: set a campaign's daily budget, in minor units (cents for USD, yen for JPY)",
    ),
    "audit": BotCommand("audit_log", ("limit",), "/audit [N]: the last writes, with undo ids"),
    "undo": BotCommand("undo", ("audit_id",), "/undo N: undo the status or budget change of audit entry N"),
    "confirm": BotCommand(
        "confirm",
        ("confirm",),
        "/confirm [ID]: run a call that was waiting for your confirmation (without ID: the one this chat last asked about)",
        group="safety",
    ),
    "reject": BotCommand(
        "reject",
        ("confirm",),
        "/reject [ID]: cancel a call that was waiting for your confirmation (without ID: the one this chat last asked about)",
        group="safety",
    ),
    "confirmations": BotCommand("list_confirmations", (), "/confirmations: the calls waiting for your confirmation"),
    "reconcile": BotCommand(
        "reconcile", ("audit_id",), "/reconcile [N]: look at Facebook for writes whose outcome was lost, and record it"
    ),
    "connect": BotCommand(
        "connect",
        (),
        "/connect [--switch]: a link to connect Facebook (sign in and allow the permissions); "
        "--switch lets it move this workspace to another Facebook user",
    ),
    "disconnect": BotCommand(
        "disconnect",
        (),
        "/disconnect: delete this workspace's Facebook token (and revoke Ad Monster's "
        "permissions when no other workspace uses the same Facebook user)",
    ),
    "token": BotCommand(
        "token_status", (), "/token: is the Facebook connection valid, when does it expire, which scopes"
    ),
    "alerts": BotCommand(
        "list_alerts", (), "/alerts: the alert rules, their thresholds, actions and when they last fired"
    ),
    "report": BotCommand(
        "weekly_report", (), "/report: the last 7 days against the 7 before, top campaigns, recommendations"
    ),
    "abtest": BotCommand(
        "launch_experiment",
        ("plan_file",),
        "/abtest PLAN.yaml [status=ACTIVE]: launch an A/B test from a plan file (PAUSED by default)",
    ),
    "experiments": BotCommand(
        "list_experiments", ("status",), "/experiments [running|completed|stopped]: the A/B tests and their winners"
    ),
    "experiment": BotCommand(
        "experiment_status", ("experiment_id",), "/experiment ID: how an A/B test is going and what happens next"
    ),
    "spend": BotCommand(
        "spend_report",
        ("date_preset",),
        "/spend [yesterday|last_7d|…] [since=… until=…] [fee_pct=…]: spend per account and campaign, with fee",
    ),
}
LOCAL_COMMANDS = {
    "help": "/help [op]: this list, or one op's arguments",
    "tool": '/tool OP {json}: call any op with JSON arguments, e.g. /tool list_campaigns {"limit": 5}',
    "quit": "/quit: leave (end of input works too)",
}


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
    rest = [f"{w[2:].replace('-', '_')}=true" if _is_flag(w) else w for w in rest]  # --switch is switch=true
    args = tuple(w for w in rest if not _is_option(w))
    options = tuple(tuple(w.split("=", 1)) for w in rest if _is_option(w))
    return SlashCommand(head, args, options)  # type: ignore[arg-type]


def _is_flag(word: str) -> bool:
    return word.startswith("--") and "=" not in word and word[2:].replace("-", "_").isidentifier()


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
        raise SlashSyntaxError(
            f"/{command.command} takes {len(positional)} word(s) ({', '.join(positional) or 'none'}), "
            f"got {len(command.args)}; use key=value for the rest"
        )
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
    from fb_utils import MAX_JSON_DEPTH, json_depth

    text = raw.strip()
    if text[:1] in "[{" or text in ("true", "false", "null"):
        if json_depth(text) > MAX_JSON_DEPTH:  # bounded before parsing: json recurses once per level
            raise SlashSyntaxError(f"a value nests more than {MAX_JSON_DEPTH} levels deep")
        with contextlib.suppress(ValueError):  # not JSON (or NaN/an over-long number): taken as text
            value = json.loads(text)
            return (
                [str(v) if isinstance(v, int | float) else v for v in value]
                if isinstance(value, list) and _items_are_text(prop)
                else value
            )
    if force_list or _is_array(prop):
        return [
            part.strip().upper() if force_list else part.strip() for part in text.strip("[]").split(",") if part.strip()
        ]
    return text


def _items_are_text(prop: dict[str, Any]) -> bool:
    arrays = [prop] + [p for p in prop.get("anyOf", []) if p.get("type") == "array"]
    return any(p.get("items", {}).get("type") == "string" for p in arrays)


def _unknown_command_text(name: str, registry: Any) -> str:

    known = list(
        dict.fromkeys(list(BOT_COMMANDS) + list(LOCAL_COMMANDS) + registry.names())
    )  # /undo is a command and an op
    close = closest_names(name, known)
    hint = f"Did you mean {', '.join('/' + c for c in close)}? " if close else ""
    return f"unknown command /{name}. {hint}/help lists the commands"


HELP_INTRO = (
    "Commands by task. WORDS in capitals are yours to fill in; key=value sets any other argument, and dry_run=true "
    "previews a change without making it. /help COMMAND explains one (every argument and an example); "
    "/tool OP {json} runs any op with JSON arguments; /quit leaves."
)
STATUS_NOUNS = {"campaign": "a campaign", "adset": "an ad set", "ad": "an ad"}


def help_text(registry: Any) -> str:
    """/help for a person: every command and op grouped by task, one whole line each, in the form a person types."""
    from fb_utils import STATUS_OPS, TaskGroup
    from fi_facebook import first_sentence

    sections: dict[Any, list[str]] = {group: [] for group in TaskGroup}
    for command in BOT_COMMANDS.values():
        if registry.get(command.op) is None and command.group:
            sections[TaskGroup(command.group)].append(command.usage)
    families = _status_families(registry, [action for action, *_ in STATUS_OPS])
    listed: set[str] = set()
    for group, specs in registry.by_group().items():
        for spec in specs:
            if spec.name in listed:
                continue
            family = families.get(spec.name)
            if family:
                listed.update(family)
                noun = spec.name.split("_", 1)[1]
                forms = " · ".join(slash_form(registry.get(name), registry) for name in family)
                sections.setdefault(group, []).append(
                    f"{forms}: pause, resume (asks to confirm), archive or delete "
                    f"{STATUS_NOUNS.get(noun, noun)} (delete cannot be undone)"
                )
                continue
            listed.add(spec.name)
            op_command = _command_for_op(spec.name)
            line = op_command.usage if op_command else f"{slash_form(spec, registry)}: {first_sentence(spec.summary)}"
            sections.setdefault(group, []).append(line)
    lines = [HELP_INTRO]
    for group, entries in sections.items():
        if entries:
            lines += ["", f"{group.label if group else 'Other'}:"] + [f"  {entry}" for entry in entries]
    return "\n".join(lines)


def _status_families(registry: Any, actions: list[str]) -> dict[str, list[str]]:
    """pause_X, resume_X, archive_X and delete_X of one noun, listed as one help line (keyed by the first of them)."""
    families = {}
    for spec in registry.specs():
        action, _, noun = spec.name.partition("_")
        if action == actions[0] and noun:
            names = [f"{each}_{noun}" for each in actions]
            if all(registry.get(name) for name in names):
                families[spec.name] = names
    return families


def _command_for_op(op: str) -> BotCommand | None:
    return next((command for command in BOT_COMMANDS.values() if command.op == op), None)


def _command_name(command: BotCommand) -> str:
    return next(name for name, each in BOT_COMMANDS.items() if each is command)


def slash_form(spec: Any, registry: Any, *, shortcut: bool = True) -> str:
    """How a person types an op: its chat command (/pause ID) unless shortcut=False, /OP WORDS when every required
    argument is a word (text, number, choice or a comma list of them), else /tool OP {…} for JSON arguments."""
    command = _command_for_op(spec.name) if shortcut else None
    if command is not None:
        return command.usage.split(": ", 1)[0]
    schema = registry.args_schema(spec)
    required = schema.get("required", [])
    if all(_is_word(schema["properties"].get(name, {}), schema.get("$defs", {})) for name in required):
        return " ".join([f"/{spec.name}", *(name.upper() for name in required)])
    return f"/tool {spec.name} {{…}}"


def _is_word(prop: dict[str, Any], defs: dict[str, Any]) -> bool:
    from fi_facebook import schema_variants

    options = schema_variants(prop, defs)
    for option in options:
        item = option.get("items", {}) if option.get("type") == "array" else option
        if "$ref" in item or (
            item.get("type") not in ("string", "integer", "number", "boolean") and "enum" not in item
        ):
            return False
    return bool(options)


def op_help_for_person(name: str, registry: Any, currency: str | None = None) -> tuple[str, bool]:
    """/help NAME: a chat command's or an op's arguments explained and a runnable example; "did you mean" otherwise."""
    name = name.strip().lstrip("/").lower()
    if name in LOCAL_COMMANDS:
        return LOCAL_COMMANDS[name], False
    command = BOT_COMMANDS.get(name)
    spec = registry.get(command.op if command else name)
    if spec is None and command is not None:  # /confirm and /reject: the gate's own commands
        return command.usage, False
    if spec is None:
        return _unknown_help_text(name, registry), True
    example = registry.example(spec)
    example_line = f"/tool {spec.name} {json.dumps(example, ensure_ascii=False)}"
    short = _slash_example(command, spec, registry, example)  # asked by op name: the op's own form, not a shortcut's
    if short:
        example_line = f"{short}   (or {example_line})"
    note = None
    if command is not None:
        usage = f"{command.usage.split(': ', 1)[0]}, runs {spec.name}"
    else:
        usage = slash_form(spec, registry, shortcut=False)
        shortcut = _command_for_op(spec.name)
        note = f"shortcut {shortcut.usage.split(': ', 1)[0]}" if shortcut is not None else None
    return registry.op_help(spec, currency=currency, example_line=example_line, usage=usage, note=note).text, False


def _slash_example(command: BotCommand | None, spec: Any, registry: Any, example: dict[str, Any]) -> str | None:
    """The example as a slash line (/budget 120… 8000, /get_campaign 120…), when words can carry every argument;
    None when it needs JSON (then /tool is the form)."""
    if command is None and slash_form(spec, registry, shortcut=False).startswith("/tool"):
        return None
    head = f"/{_command_name(command)}" if command else f"/{spec.name}"
    positional = command.positional if command else _required_fields(spec)
    words: list[str] = []
    for name in positional:
        if name not in example:
            break
        word = _slash_word(example[name])
        if word is None:
            return None
        words.append(word)
    taken = set(positional[: len(words)])
    options = [f"{name}={_slash_word(value)}" for name, value in example.items() if name not in taken]
    if any(o.split("=", 1)[1] == "None" for o in options):
        return None
    return " ".join([head, *words, *options])


def _slash_word(value: Any) -> str | None:
    """One example value as a slash word: text as it is (quoted when it has spaces), numbers, comma lists; else None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return shlex.quote(value) if value else None
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in value)
    ):
        joined = ",".join(map(str, value))
        return None if " " in joined else joined
    return None


def _unknown_help_text(name: str, registry: Any) -> str:

    known = list(
        dict.fromkeys(list(BOT_COMMANDS) + list(LOCAL_COMMANDS) + registry.names())
    )  # /undo is a command and an op
    close = closest_names(name, known)
    hint = f" Did you mean {', '.join('/' + c for c in close)}?" if close else ""
    return f"There is no command or op called {name[:60]!r}.{hint} /help lists them all, grouped by task."


# ---------------------------------------------------------------------------------------------------------------
# Session start: the selected account for the banner
# ---------------------------------------------------------------------------------------------------------------


async def describe_selected_account(facebook: Any) -> str:
    """The selected ad account, for the banner."""
    from fb_utils import FacebookError

    if facebook.graph is None:
        return "Facebook not connected: /connect (or admonster token set)"
    selected = (await facebook.selections()).get("ad_account")
    if not selected:
        return "no ad account selected: /accounts, then /use act_…"
    try:
        info = await facebook.graph.account_info(selected)
    except FacebookError as error:
        return f"account unavailable: {error.to_text()}"
    return f"{info.name} ({selected}) · {info.currency}"


async def _selected_currency(facebook: Any) -> str | None:
    """The selected ad account's currency, so help can say what 5000 means there; None when it is not known."""
    from fb_utils import FacebookError

    selected = (await facebook.selections()).get("ad_account") if facebook.graph is not None else None
    if not selected:
        return None
    try:
        return (await facebook.graph.account_info(selected)).currency or None
    except FacebookError:
        return None


# ---------------------------------------------------------------------------------------------------------------
# Chat
# ---------------------------------------------------------------------------------------------------------------


class Chat:
    """Reads lines, answers slash-commands through the registry, and says what free text needs."""

    def __init__(
        self,
        runtime: Any,
        workspace: Any,
        console: Any,
        *,
        thread_id: str = "terminal",
        stream: bool = True,
        interface: str = "chat",
        relay: Callable[[str], Any] | None = None,
    ) -> None:
        self.interface = interface
        self.relay = relay  # not printing (stream=False): the LLM's text as it arrives goes here too (the HTTP stream)
        self.runtime = runtime
        self.workspace = workspace
        self.console = console
        self.thread_id = thread_id
        self.stream = stream  # print the LLM's text as it arrives (the terminal); else return it whole
        self.last_tool_calls: list[dict[str, Any]] = []  # what the last answer ran: the HTTP chat API reports it
        self.progress: TransferProgress | None = None  # the terminal's progress bars, when run() draws them
        self.banner_console = console  # piped runs print the banner on standard error
        self.recent_ids = RecentIds()  # ids seen in answers, for the prompt's completion

    async def facebook(self) -> Any:
        return await self.runtime.facebook_for(self.workspace)

    async def banner(self) -> None:
        from rich.panel import Panel

        mode = self.runtime.mode
        style = "green" if mode == "SANDBOX" else "bold red"
        where = "embedded sandbox, no real money" if mode == "SANDBOX" else f"{self.runtime.graph_url}: REAL MONEY"
        account = await describe_selected_account(await self.facebook())
        self.banner_console.print(
            Panel.fit(
                f"[{style}]{mode}[/] · {where} · workspace {_escape(self.workspace.name)}\n"
                f"Account: {_escape(account)}\nType /help for commands, /quit to leave.",
                title="Ad Monster",
            )
        )

    async def answer(self, line: str) -> tuple[str, bool]:
        """The reply to one line (with any unread notices), and whether it reports a failure."""
        self.last_tool_calls = []
        reply, failed = await self._reply(line)
        notices = self.runtime.notifier and await self.runtime.notifier.inbox_text(self.workspace.id)
        return (f"{notices}\n{reply}" if notices else reply), failed

    async def _reply(self, line: str) -> tuple[str, bool]:
        text = line.strip()
        if not text.startswith("/"):
            settings = getattr(self.runtime, "settings", None)
            if settings is None or not settings.llm_configured:
                return NO_LLM_ANSWER, False
            return await self._llm_reply(text)
        facebook = await self.facebook()
        if text.split(None, 1)[0].lower() == "/tool":
            return await self._tool(facebook, text)
        try:
            command = parse_slash(text)
            if command.command == "help":
                return await self._help(facebook, command)
            if command.command in ("confirm", "reject") and not command.args and not command.options:
                waiting = await self._last_waiting()
                if waiting is None:
                    return (
                        "Nothing this conversation asked about is waiting for your confirmation. "
                        "/confirmations lists what is waiting, with the ids to /confirm or /reject."
                    ), False
                command = SlashCommand(command.command, (waiting,), ())
            op, args = slash_to_call(command, facebook.registry)
        except SlashSyntaxError as exc:
            return f"ERROR validation: {exc}. Fix: /help shows how to write each command.", True
        result = await facebook.call(op, args, interface=self.interface)
        self.last_tool_calls = [{"name": op, "arguments": args, "ok": result.ok, "files": list(result.files or [])}]
        await self._remember(line, result.text, (op, args))
        return result.text, not result.ok and not result.held

    async def _last_waiting(self) -> str | None:
        """The confirmation this conversation last asked the person about, while it still waits: what a bare
        `/confirm` or `/reject` answers (from the thread's history, so it holds across the console's requests too)."""
        from fb_utils import ASKED_CONFIRMATION

        for message in reversed(await self.runtime.store.chat_history(self.workspace.id, self.thread_id, limit=40)):
            found = ASKED_CONFIRMATION.search(str(message.get("content") or ""))
            if found:
                held = await self.runtime.store.get_confirmation(self.workspace.id, found.group(1))
                return found.group(1) if held is not None and held.status == "pending" else None
        return None

    async def _remember(self, line: str, reply: str, call: tuple[str, Any]) -> None:
        """Operator commands join the thread's history, so the LLM (and GET /v1/threads) see what was done: with
        personal data withheld, as the audit log keeps it (fi_facebook.chat_messages_at_rest)."""
        from fi_facebook import chat_messages_at_rest, command_line_at_rest

        text = command_line_at_rest(line.strip(), *call)
        await self.runtime.store.append_chat_messages(
            self.workspace.id,
            self.thread_id,
            chat_messages_at_rest([{"role": "user", "content": text}, {"role": "assistant", "content": reply}], [call]),
        )

    def chat_loop(self) -> Any:
        """The LLM chat loop (one per process, shared by every conversation)."""
        return self.runtime.chat_loop()

    async def _llm_reply(self, text: str) -> tuple[str, bool]:
        """Free text to the LLM; its text streams to the console, and only what was not shown is returned."""
        shown: list[str] = []

        def on_text(fragment: str) -> None:
            shown.append(fragment)
            self.console.print(fragment, end="", markup=False, highlight=False, soft_wrap=True)
            with contextlib.suppress(Exception):
                self.console.file.flush()

        try:
            turn = await self.chat_loop().reply(
                self.workspace,
                self.thread_id,
                text,
                on_text=on_text if self.stream else self.relay,
                interface=self.interface,
            )
        finally:  # also when Ctrl-C cancels the turn mid-sentence: what comes next starts on its own line
            if shown:
                self.console.print()
        self.last_tool_calls = [
            {"name": call.name, "arguments": call.arguments, "ok": call.ok, "files": call.files}
            for call in turn.tool_calls
        ]
        if not turn.ok or not self.stream:
            return turn.text, not turn.ok
        return "", False

    async def _help(self, facebook: Any, command: SlashCommand) -> tuple[str, bool]:
        if not command.args:
            return help_text(facebook.registry), False
        return op_help_for_person(command.args[0], facebook.registry, await _selected_currency(facebook))

    async def _tool(self, facebook: Any, line: str) -> tuple[str, bool]:
        """`/tool OP {json}`: the rest of the line after the op is the JSON arguments, taken verbatim."""
        parts = line.split(None, 2)
        if len(parts) < 2:
            return 'ERROR validation: /tool needs an op. Fix: /tool list_campaigns {"limit": 5}', True
        name = parts[1].strip().lower()
        if facebook.registry.get(name) is None and name not in ("help", "find_ops", "confirm", "reject"):
            close = facebook.registry.closest(name)
            hint = f"did you mean {', '.join('/tool ' + c for c in close)}? " if close else ""
            return (
                f"ERROR validation: there is no op called {name[:60]!r}. Fix: {hint}/help lists them all, grouped by task.",
                True,
            )
        result = await facebook.call(parts[1], parts[2] if len(parts) > 2 else None, interface=self.interface)
        self.last_tool_calls = [
            {
                "name": parts[1],
                "arguments": parts[2] if len(parts) > 2 else None,
                "ok": result.ok,
                "files": list(result.files or []),
            }
        ]
        await self._remember(line, result.text, (parts[1], parts[2] if len(parts) > 2 else None))
        return result.text, not result.ok and not result.held

    async def run(self, source: Any = None) -> bool:
        """Answer commands until /quit or the end of input; True when any answer was an error (a piped run's exit
        status). `source` gives the commands (admonster_terminal's PromptInput, PipedInput or ListInput); by default
        standard input, read without blocking the event loop."""
        from admonster_terminal import QUIT_WORDS, PipedInput
        from fb_utils import set_progress_handler

        self.progress = TransferProgress(self.console)
        set_progress_handler(self.progress)  # uploads in this session report here (fb_utils' progress channel)
        await self.banner()
        source = source if source is not None else PipedInput(sys.stdin)
        failed_any = False
        try:
            while (line := await source.read()) is not None:
                if line.strip().lower() in QUIT_WORDS:
                    break
                if not line.strip():
                    continue
                reply, failed = await self._answer_line(line, cancellable=source.interactive)
                failed_any = failed_any or failed
                if self.progress is not None:
                    self.progress.close()  # a transfer that stopped early leaves no bar behind the answer
                if reply:
                    self.recent_ids.remember(reply)
                    self.console.print(_escape(reply), style="red" if failed else None, highlight=False)
        finally:
            source.close()
        return failed_any

    async def _answer_line(self, line: str, *, cancellable: bool) -> tuple[str, bool]:
        """One command's answer; at the terminal, Ctrl-C while it runs cancels it and answers "Cancelled. …"."""
        if not cancellable:
            try:
                return await self.answer(line)
            except Exception as error:  # a bad line is one ERROR line and the chat goes on (the log has the details)
                return _crash_line(error), True
        from admonster_terminal import sigint_cancels

        mark: dict[str, int] = {}

        async def marked_answer() -> tuple[str, bool]:
            mark["audit_id"] = await self._last_audit_id()  # what the log held before: the cancel line says what is new
            return await self.answer(line)

        task = asyncio.ensure_future(marked_answer())
        with sigint_cancels(task) as interrupt:
            try:
                return await task
            except asyncio.CancelledError:
                if not interrupt.pressed:
                    raise
            except Exception as error:
                return _crash_line(error), True
        return await self._cancelled_text(mark.get("audit_id")), False

    async def _last_audit_id(self) -> int:
        latest = await self.runtime.store.list_audit(self.workspace.id, limit=1)
        return latest[0].id if latest else 0

    async def _cancelled_text(self, before: int | None) -> str:
        """What a cancelled command left: the writes it had started stay in the audit log (docs/exactly-once.md).
        `before`: the last audit id before it began (None: cancelled before it began)."""
        if self.progress is not None:
            self.progress.close()
        if before is None:
            return "Cancelled. Nothing was written."
        entries = [e for e in await self.runtime.store.list_audit(self.workspace.id, limit=50) if e.id > before]
        if not entries:
            return "Cancelled. Nothing was written."
        from fi_facebook import cancelled_writes_text

        text = cancelled_writes_text(entries, for_llm=False)
        return f"Cancelled. {text[:1].upper()}{text[1:]}. /audit shows the log."

    def sign_in_finished(self, outcome: Any) -> None:
        """The loopback callback's news, printed as it happens (above the prompt while it waits)."""
        text = f"{outcome.title}: {' '.join(outcome.lines)}"
        self.console.print(_escape(text), style="green" if outcome.ok else "red", highlight=False)

    def history_line(self, text: str) -> str:
        """A prompt history entry as the history file keeps it: each command the way the chat history stores what the
        person typed (personal data withheld, docs/security.md "Personal data at rest")."""
        from admonster_terminal import split_commands

        return "\n".join(line_at_rest(command, self.registry) for command in split_commands(text.split("\n")))

    @property
    def registry(self) -> Any:
        from fi_facebook import REGISTRY

        return REGISTRY


def line_at_rest(line: str, registry: Any) -> str:
    """One typed command as stored at rest: a slash-command that carried personal data in the /tool form with the data
    withheld, then every text redacted (fi_facebook.command_line_at_rest and chat_messages_at_rest)."""
    from fi_facebook import chat_messages_at_rest, command_line_at_rest

    text = line.strip()
    call = None
    if text.startswith("/") and text.split(None, 1)[0].lower() != "/tool":
        with contextlib.suppress(SlashSyntaxError, ValueError):
            command = parse_slash(text)
            if command.command not in LOCAL_COMMANDS:
                call = slash_to_call(command, registry)
    stored = command_line_at_rest(text, *call) if call else text
    return chat_messages_at_rest([{"role": "user", "content": stored}], [call] if call else None)[0]["content"]


class TransferProgress:
    """Draws fb_utils' progress channel (long uploads, video processing) as rich progress bars, one per label."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, label: str, sent: int, total: int) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        task = self._tasks.get(label)
        if task is None:
            task = self._tasks[label] = self._progress.add_task(label, total=max(total, 1))
        self._progress.update(task, completed=sent, total=max(total, 1))
        if sent >= total:
            self._progress.remove_task(self._tasks.pop(label))
            if not self._tasks:
                self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress, self._tasks = None, {}


def _crash_line(error: BaseException) -> str:
    """One line for a chat line that failed unexpectedly; the traceback goes to the log, never to the screen."""
    from fb_utils import FacebookError, get_logger, redact

    if isinstance(error, FacebookError):
        return error.to_text()
    get_logger("admonster_bot").error("chat line crashed", error=redact(f"{type(error).__name__}: {error}")[:300])
    return (
        f"ERROR internal: that line could not be handled ({type(error).__name__}). "
        "Fix: check the command with /help and try again."
    )


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


# A conversation's id (the HTTP chat routes and the console choose their own).
THREAD_ID = re.compile(r"[\w.:@-]{1,100}")


def thread_id_problem(thread_id: Any) -> str | None:
    """Why a thread id is refused (1 to 100 letters, digits, and . _ : @ -), or None."""
    if not isinstance(thread_id, str) or not THREAD_ID.fullmatch(thread_id.strip()):
        return "thread_id must be 1 to 100 letters, digits, or . _ : @ -"
    return None
