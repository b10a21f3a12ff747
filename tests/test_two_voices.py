"""Two voices from one result (issue 19): what a person reads (`OpResult.text`: chat, console, slash-commands) holds
no machine hints — op calls, argument JSON, `data.` paths, escapes — while an LLM (`llm_text`: MCP, the chat loop)
gets the hints too. Every op's own example is run against the sandbox and both voices are read."""

from __future__ import annotations

import re

MACHINE_HINTS = {
    "a data path": re.compile(r"\bdata\.[a-z_]+"),
    "op=/args=": re.compile(r"\bop=|\bargs=\{"),
    "a call with arguments": re.compile(r"\b[a-z]+_[a-z_]+ with [a-z_]+="),
    "a \\u escape": re.compile(r"\\u[0-9a-fA-F]{4}"),
    "pydantic's wording": re.compile(r"Value error,|\bargs: "),
    "a double stop": re.compile(r"[A-Za-z)]\.\.(?![.\d])"),
}


def machine_hints(text: str) -> list[str]:
    return [
        f"{kind}: …{text[max(0, m.start() - 40) : m.end() + 20]}…"
        for kind, pattern in MACHINE_HINTS.items()
        for m in [pattern.search(text)]
        if m
    ]


def test_the_patterns_catch_what_users_reported():
    for reported in (
        'Fix: Correct the argument(s); op=help with args={"op": "x"}',
        "Use in targeting: (data.targeting)",
        'More: list_campaigns with after="Y3Vy"',
        '(got "\\u00a54,000")',
        "args: Value error, bad",
        "Reconnect..",
    ):
        assert machine_hints(reported), reported
    assert machine_hints("More: /list_campaigns after=Y3Vy · 2026-02-23 to 2026-03-01 · $1.50 …") == []


async def test_every_ops_example_answers_a_person_in_plain_words(facebook):
    tried, with_hints, problems = 0, 0, []
    for spec in facebook.registry.specs():
        if spec.example is None:
            continue
        result = await facebook.call(spec.name, dict(spec.example))
        tried += 1
        problems += [f"{spec.name}: {found}" for found in machine_hints(result.text)]
        if result.hints:
            with_hints += 1
            assert all(hint in result.llm_text for hint in result.hints), spec.name
        if result.held:
            assert "/confirm " in result.text and "/reject " in result.text and "ERROR" not in result.text, spec.name
            assert "confirm=" in result.llm_text, spec.name
    assert problems == [], "\n".join(problems)
    assert tried == sum(spec.example is not None for spec in facebook.registry.specs()) >= 40 and with_hints >= 1


def test_launch_steps_and_counts_read_as_people_say_them():
    from fb_creative import step_words
    from fb_utils import counted

    assert [step_words(s) for s in ("campaign", "image:0", "video:1.0", "creative:0", "ad:2")] == [
        "campaign",
        "image upload of creative 1",
        "video upload of creative 2, card 1",
        "creative 1",
        "ad 3",
    ]
    assert [counted(n, "purchase") for n in (0, 1, 2, 1204)] == [
        "0 purchases",
        "1 purchase",
        "2 purchases",
        "1,204 purchases",
    ]


def test_an_invalid_token_reads_with_one_full_stop():
    from datetime import UTC, datetime

    from fi_facebook import TokenHealth

    said = TokenHealth(
        connected=True, valid=False, reason="Error validating access token: Session has expired."
    ).describe(datetime(2026, 12, 6, tzinfo=UTC))
    assert (
        said
        == "The Facebook token is not valid: Error validating access token: Session has expired. Reconnect with /connect."
    )
    assert machine_hints(said) == []


async def test_the_next_step_after_a_new_campaign_works_as_typed(facebook):
    """create_campaign ends with the ad set command a person can type: with a campaign budget it carries none (an ad
    set budget there is refused), without one it carries a daily budget. Both run as printed."""
    from admonster_chat import parse_slash, slash_to_call

    for name, budget in (("Voices CBO", {"daily_budget": 5000}), ("Voices ABO", {})):
        made = await facebook.call("create_campaign", {"name": name, "objective": "OUTCOME_TRAFFIC", **budget})
        assert made.ok, made.text
        [step] = [line for line in made.text.splitlines() if line.startswith("Next, an ad set")]
        command = step.split(": ", 1)[1]
        assert ("daily_budget=" in command) is (not budget), command
        op, args = slash_to_call(parse_slash(command), facebook.registry)
        adset = await facebook.call(op, args)
        assert adset.ok, (command, adset.text)
        assert adset.data["campaign_id"] == made.data["id"]


async def test_a_bare_confirm_answers_what_this_conversation_asked_across_requests(tmp_path):
    """The console sends each line as its own request: `/confirm` alone still finds the call this thread asked about,
    and only while it waits; another thread's held call is never run by it."""
    import aiohttp

    from testkit import running_server

    async with running_server(tmp_path) as (url, runtime):
        workspace = await runtime.store.ensure_workspace("voices")
        key = await runtime.store.create_api_key(workspace.id)

        async def say(thread: str, message: str) -> dict:
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"{url}/v1/chat",
                    json={"thread_id": thread, "message": message},
                    headers={"Authorization": f"Bearer {key}"},
                ) as resp:
                    assert resp.status == 200
                    return await resp.json()

        nothing = await say("t1", "/confirm")
        assert nothing["ok"] and "Nothing this conversation asked about" in nothing["reply"]
        facebook = await runtime.facebook_for(workspace)
        active = (await facebook.call("list_campaigns", {"status": ["ACTIVE"]})).data["campaigns"]
        target = next(c for c in active if c.get("daily_budget"))
        raised = int(target["daily_budget"]) * 2
        held = await say("t1", f"/budget {target['id']} {raised}")
        assert held["ok"] and held["reply"].startswith("Waiting for your confirmation"), held
        other = await say("t2", "/confirm")  # another conversation: nothing of its own waits
        assert "Nothing this conversation asked about" in other["reply"]
        done = await say("t1", "/confirm")
        assert done["ok"] and "Nothing" not in done["reply"], done
        now = await facebook.call("get_campaign", {"campaign_id": target["id"]})
        assert int(now.data["campaign"]["daily_budget"]) == raised
        again = await say("t1", "/confirm")  # used: it no longer waits
        assert "Nothing this conversation asked about" in again["reply"]


async def test_an_errors_fix_names_commands_for_a_person_and_calls_for_an_llm(facebook):
    """The ops a fix names are commands a person can type (`/list_alerts`, `/resume_launch launch_id=5`); the LLM
    keeps the call's own words; a quoted shell command is left as it is."""
    from fi_facebook import commands_in_fix

    gone = await facebook.call("delete_alert", {"alert_id": 987654})
    assert not gone.ok and "Fix: " in gone.text
    fix, llm_fix = gone.text.split(" Fix: ")[1], gone.llm_text.split(" Fix: ")[1]
    assert "/list_alerts" in fix and "/list_alerts" not in llm_fix and "list_alerts" in llm_fix, (fix, llm_fix)
    names = facebook.registry.names()
    assert (
        commands_in_fix("ERROR x: y. Fix: resume_launch with launch_id=5 and after=x, or `admonster connect`.", names)
        == "ERROR x: y. Fix: /resume_launch launch_id=5 after=x, or `admonster connect`."
    )
    for command in ('/tool send_events {"pixel_id": "1"}', "/help create_adset"):  # already commands: left as they are
        assert commands_in_fix(f"ERROR x: y. Fix: {command}.", names) == f"ERROR x: y. Fix: {command}."
