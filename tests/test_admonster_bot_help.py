"""/help for people: grouped by task, every op's arguments explained, and every example runnable through the chat."""

from __future__ import annotations

import io
import json
import re

import pytest
import yaml

from admonster_chat import BOT_COMMANDS, LOCAL_COMMANDS, Chat, help_text, op_help_for_person
from fb_utils import TaskGroup
from fi_facebook import REGISTRY
from test_fb_creative import jpeg_header, mp4_file
from testkit import sandbox_settings

EXAMPLE_RE = re.compile(r"^Example:\n  (?P<line>.+)$", re.MULTILINE)


def examples_of(help_text_: str) -> list[str]:
    """The runnable lines of a /help OP answer: the slash form and, in brackets, the /tool form."""
    line = EXAMPLE_RE.search(help_text_).group("line")
    slash, _, tool = line.partition("   (or ")
    return [slash] + ([tool.removesuffix(")")] if tool else [])


def test_help_groups_every_command_and_op_by_task():
    text = help_text(REGISTRY)
    headings = [line[:-1] for line in text.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    assert headings == [group.label for group in TaskGroup]
    assert "fb_" not in text and "fi_facebook" not in text and "facebook(op=" not in text
    body = "\n".join(line for line in text.splitlines() if line.startswith("  "))
    for spec in REGISTRY.specs():  # every op can be found: by its own name, or through its chat command
        command = next((name for name, c in BOT_COMMANDS.items() if c.op == spec.name), None)
        assert re.search(rf"/(tool )?{spec.name}\b", body) or re.search(rf"/{command}\b", body), spec.name
    for name in BOT_COMMANDS:
        assert f"/{name}" in body, name
    for line in body.splitlines():  # one whole line each: never cut inside a sentence
        assert line.rstrip()[-1] in ".)]|:…" or line.rstrip()[-1].isalnum(), line
        assert not line.rstrip().endswith((",", ";", " and", " or", " the", " a")), line
    assert "/tool create_adset {…}" in body and "/get_campaign CAMPAIGN_ID" in body  # JSON only where words cannot do
    assert "/pause ID · /resume ID · /archive_campaign CAMPAIGN_ID · /delete_campaign CAMPAIGN_ID" in body


@pytest.mark.parametrize("name", ["create_campaign", "launch_campaign", "create_adset", "budget", "send_events"])
def test_op_help_expands_nested_types_defaults_and_money(name):
    text, failed = op_help_for_person(name, REGISTRY, "USD")
    assert not failed and "facebook(op=" not in text
    assert "Arguments:" in text and "Example:" in text
    if name in ("create_campaign", "budget", "launch_campaign", "create_adset"):
        assert "money in cents of USD: 5000 = $50.00" in text
    if name == "create_campaign":
        assert re.search(r"objective \(one of OUTCOME_APP_PROMOTION, .*OUTCOME_TRAFFIC; required\)", text)
        assert 'status (one of PAUSED, ACTIVE; optional; default "PAUSED")' in text
        assert "special_ad_categories (list of one of CREDIT," in text
    if name == "launch_campaign":  # the nested campaign object's fields are listed under it, indented
        assert re.search(r"\n  campaign \(object; required\).*\n      name \(text; required\)", text)
        assert re.search(
            r"\n  creatives \(list of object; required\).*\n      kind \(one of image, video, carousel, page_post", text
        )
    if name == "budget":
        assert text.startswith("/budget ID AMOUNT, runs update_campaign")
        assert re.search(r"Example:\n  /budget \d+ \d+   \(or /tool update_campaign \{", text)
    yen, _ = op_help_for_person(name, REGISTRY, "JPY")
    if "money in" in text:
        assert (
            "money in whole JPY: 5000 = ¥5,000" in yen
            and "cents" not in yen.split("Arguments:")[1].split("Minor units")[0]
        )


def test_help_for_unknown_names_suggests_and_never_lists_everything():
    text, failed = op_help_for_person("campaing", REGISTRY)
    assert failed and "Did you mean /campaigns" in text and len(text.splitlines()) == 1
    text, failed = op_help_for_person("no_such_op_at_all", REGISTRY)
    assert failed and "There is no command or op called 'no_such_op_at_all'" in text and len(text.splitlines()) == 1
    text, _ = op_help_for_person("nope", REGISTRY)
    suggested = re.findall(r"/(\w+)", text.split("Did you mean")[1].split("?")[0]) if "Did you mean" in text else []
    assert len(suggested) == len(set(suggested)), text  # /undo is a command and an op: suggested once
    assert op_help_for_person("tool", REGISTRY) == (LOCAL_COMMANDS["tool"], False)


# Files the examples name, made in the chat's folder as a person would have them.
def _example_files(folder) -> None:
    (folder / "banner.jpg").write_bytes(jpeg_header(1080, 1080))
    mp4_file(folder / "promo.mp4", 20_000)
    for name in ("customers.csv", "unsubscribed.csv"):
        (folder / name).write_text("email,phone\njane@example.com,+1 650 555 0100\n", encoding="utf-8")
    (folder / "experiments").mkdir()
    (folder / "experiments" / "creative-test.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "Help example test",
                "hypothesis": "A sale message gets more clicks",
                "variable": "creative",
                "metric": "ctr",
                "campaign": {"objective": "OUTCOME_TRAFFIC"},
                "adset": {"targeting": {"geo_locations": {"countries": ["US"]}, "age_min": 25}},
                "daily_budget": 3000,
                "duration_days": 7,
                "variants": [
                    {
                        "name": name,
                        "creative": {
                            "image": "../banner.jpg",
                            "link": "https://shop.example/spring",
                            "message": message,
                        },
                    }
                    for name, message in (("A", "Spring is here"), ("B", "Spring sale"))
                ],
            }
        ),
        encoding="utf-8",
    )


def registry_example(name: str) -> dict:
    return REGISTRY.example(REGISTRY.get(name))


def _leaves(value) -> list:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def _same_call(slash_line: str, tool_line: str) -> bool:
    """The slash example and its /tool form make the same validated arguments (numbers typed as words included)."""
    from admonster_chat import parse_slash, slash_to_call
    from fi_facebook import validate_args

    op, words = slash_to_call(parse_slash(slash_line), REGISTRY)
    _, tool_op, raw = tool_line.split(" ", 2)
    as_text = lambda model: json.loads(json.dumps(model.model_dump(mode="json")), parse_int=str, parse_float=str)
    return op == tool_op and as_text(validate_args(REGISTRY.get(op), words)) == as_text(
        validate_args(REGISTRY.get(op), json.loads(raw))
    )


async def test_every_ops_example_runs_through_the_chat_without_a_validation_error(tmp_path, monkeypatch):
    """Each op's /help example, as shown, typed into the chat over the embedded sandbox. Its arguments pass the op's
    model and every local check of their form (files named exist in the chat's folder): Facebook (or the workspace)
    may answer that a made-up id is not there, which is not the example's fault; a refusal of the arguments is."""
    from rich.console import Console

    from admonster_runtime import open_runtime
    from admonster_server import CallbackListener

    folder = tmp_path / "work"
    folder.mkdir()
    _example_files(folder)
    monkeypatch.chdir(folder)
    async with open_runtime(sandbox_settings(tmp_path)) as runtime:
        listener = CallbackListener(runtime)
        runtime.callback_url = listener.url  # as `admonster chat` does, so /connect can answer with its link
        chat = Chat(runtime, await runtime.workspace("default"), Console(file=io.StringIO()), stream=False)
        refused, ran = [], 0
        try:
            for name in sorted(REGISTRY.names(), key=lambda name: name == "disconnect"):  # the token goes last
                shown, failed = await chat.answer(f"/help {name}")
                assert not failed and "Example:" in shown, shown
                assert "money in cents of USD" in shown or "money in" not in shown  # the demo account's currency
                first, *other = examples_of(shown)
                assert not other or _same_call(first, other[0]), (first, other)
                reply, _ = await chat.answer(first)
                ran += 1
                argument_error = re.search(rf"ERROR validation: ({name}: |No \w+ file at)", reply)
                # Any other refusal must be about a value the example made up (an id this account does not have).
                about_a_value = "ERROR validation" not in reply or any(
                    str(v) in reply for v in _leaves(registry_example(name))
                )
                if argument_error or not about_a_value or "ERROR internal" in reply or "Traceback" in reply:
                    refused.append(f"{first}\n    -> {reply[:300]}")
        finally:
            await listener.stop()
        assert not refused, f"{len(refused)} of {ran} examples were refused:\n" + "\n".join(refused)
        assert ran == len(REGISTRY.names())


async def test_status_in_the_chat_warns_of_a_token_about_to_expire(tmp_path):
    """/status as a person types it: the figures in the account's currency and zone, and the expiring connection
    named with the command that renews it."""
    import aiohttp
    from rich.console import Console

    from admonster_runtime import open_runtime

    async with open_runtime(sandbox_settings(tmp_path)) as runtime:
        workspace = await runtime.workspace("default")
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{runtime.sandbox_url}/__sandbox/tokens", json={"expires_in": 3 * 86400}
            ) as answer:
                token = (await answer.json())["access_token"]
        await runtime.connector.store_checked_token(workspace.id, token, kind="sandbox")
        chat = Chat(runtime, workspace, Console(file=io.StringIO()), stream=False)
        reply, failed = await chat.answer("/status")
        assert not failed, reply
        assert "The Facebook connection expires in 3 day(s). /connect renews it" in reply
        assert re.search(
            r"spend today \(\w{3} \d\d \w{3} \d{4}, America/Los_Angeles\) \$[\d,]+\.\d\d, yesterday", reply
        )
        assert "/day across" in reply or "/day (campaign budget)" in reply
        assert "combined campaign daily budgets" not in reply


async def test_unknown_names_in_the_chat_get_did_you_mean(tmp_path):
    from rich.console import Console

    from admonster_runtime import open_runtime

    async with open_runtime(sandbox_settings(tmp_path)) as runtime:
        chat = Chat(runtime, await runtime.workspace("default"), Console(file=io.StringIO()), stream=False)
        reply, failed = await chat.answer("/tool list_campaign {}")
        assert failed and reply.startswith(
            "ERROR validation: there is no op called 'list_campaign'. Fix: did you mean /tool list_campaigns"
        )
        reply, failed = await chat.answer("/help creat_campaign")
        assert failed and "Did you mean /create_campaign" in reply and len(reply.splitlines()) == 1
        reply, failed = await chat.answer("/help")
        assert not failed and reply.splitlines()[2] == "Connect:" and "fb_campaign" not in reply


def test_a_help_line_is_a_whole_sentence():
    from fi_facebook import first_sentence

    assert first_sentence("Pause it (e.g. Summer Sale. Or not). Then more.") == "Pause it (e.g. Summer Sale. Or not)."
    assert first_sentence("Use a button, e.g. SHOP_NOW. Second.") == "Use a button, e.g. SHOP_NOW."
    assert first_sentence("One sentence only") == "One sentence only"
