"""The web console's views and actions in a real browser (Debian's Chromium driven by Playwright), at a desktop width
(1280 px) and a phone width (375 px): the workspace name, the campaign table for a chosen period with pause/resume
and budget edits that go through the confirmation gate (Confirm and Reject on the card), the spend chart, chat
history kept across a reload, confirmation cards in the chat, Markdown answers, the keyboard, and the errors (a bad
API key, the server down). Layout is checked by element boxes (nothing wider than the viewport, no overlapping
sections), never by pixels; screenshots go to $ADMONSTER_TEST_ARTIFACTS when it is set."""

from __future__ import annotations

import os
import re
import shutil
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from fb_utils import format_money
from test_admonster_web import server  # noqa: F401 - the same server fixture (admonster serve + a tool helper)
from testkit import running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = os.environ.get("ADMONSTER_TEST_ARTIFACTS")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium (`make chromium` installs it)",
)

# Boxes of the page, measured in the browser: what sticks out of the viewport (outside scrolling boxes) and which
# sections overlap.
LAYOUT_PROBE = """() => {
  const vw = document.documentElement.clientWidth;
  const visible = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const wide = [...document.querySelectorAll('body *')].filter((e) => visible(e) && !e.closest('.table-scroll, pre, dialog')
    && e.getBoundingClientRect().right > vw + 1).map((e) => `${e.tagName}#${e.id}.${e.className}`);
  const boxes = [...document.querySelectorAll('#console > section')].filter(visible).map((e) => [e.id, e.getBoundingClientRect()]);
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const [a, ra] = boxes[i], [b, rb] = boxes[j];
    const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left), h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
    if (w > 1 && h > 1) overlaps.push(a + ' / ' + b);
  }
  return { scrollWidth: document.documentElement.scrollWidth, vw, wide, overlaps };
}"""


async def _key(runtime, name: str) -> tuple[object, str]:
    """A workspace the sandbox signs its demo user into (connected, the USD demo account selected)."""
    workspace = await runtime.store.ensure_workspace(name)
    return workspace, await runtime.store.create_api_key(workspace.id)


@asynccontextmanager
async def browser_page(url: str, width: int, height: int = 900):
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        context = await browser.new_context(viewport={"width": width, "height": height})
        page = await context.new_page()
        page.errors, page.missing, page.external = [], [], []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.on("response", lambda response: page.missing.append(response.url) if response.status == 404 else None)
        page.on(
            "request",
            lambda request: (
                page.external.append(request.url)
                if not request.url.startswith(("http://127.0.0.1", "data:", "blob:http://127.0.0.1"))
                else None
            ),
        )
        try:
            await page.goto(url + "/")
            yield page
        finally:
            await context.close()
            await browser.close()


async def sign_in(page, key: str) -> None:
    from playwright.async_api import expect

    await page.get_by_label("Workspace API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#token-status")).to_contain_text("Token valid", timeout=20_000)
    # Every section loaded: until then the layout still moves, and a click can land beside its button.
    await expect(page.locator("#console")).not_to_have_attribute("aria-busy", "true", timeout=30_000)


async def check_layout(page, name: str, tmp_path: Path) -> None:
    layout = await page.evaluate(LAYOUT_PROBE)
    assert layout["scrollWidth"] <= layout["vw"], f"{name}: the page is wider than the viewport: {layout}"
    assert not layout["wide"], f"{name}: elements stick out of the viewport: {layout['wide']}"
    assert not layout["overlaps"], f"{name}: sections overlap: {layout['overlaps']}"
    shot = tmp_path / f"{name}.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if ARTIFACTS:
        Path(ARTIFACTS).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(ARTIFACTS) / shot.name)


def _campaign(campaigns: list[dict], name: str) -> dict:
    return next(c for c in campaigns if c["name"] == name)


# ---------------------------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------------------------


async def test_me_names_the_workspace_and_needs_the_key(server):
    workspace, key = await _key(server.runtime, "Shop Tokyo")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/v1/me", headers={"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status == 200
            body = await resp.json()
        async with session.get(f"{server.url}/v1/me") as resp:
            assert resp.status == 401
        async with session.get(f"{server.url}/v1/me", headers={"Authorization": "Bearer amk_nope"}) as resp:
            assert resp.status == 401
        for path in ("/favicon.ico", "/console/static/favicon.svg"):
            async with session.get(server.url + path) as resp:
                assert resp.status == 200 and resp.content_type == "image/svg+xml", path
                assert (await resp.text()).startswith("<svg")
    assert body["workspace"] == {"id": workspace.id, "name": "Shop Tokyo"}
    assert body["mode"] == "SANDBOX"
    from fb_utils import ZERO_DECIMAL_CURRENCIES

    assert set(body["zero_decimal_currencies"]) == ZERO_DECIMAL_CURRENCIES


# ---------------------------------------------------------------------------------------------------------------
# The views and actions at a desktop width
# ---------------------------------------------------------------------------------------------------------------


@needs_chromium
async def test_campaign_table_chart_and_gate_at_desktop_width(server, tmp_path):
    from playwright.async_api import expect

    _workspace, key = await _key(server.runtime, "Demo shop")
    listed = (await server.tool(key, "list_campaigns", {"all_pages": True}))["data"]
    currency, campaigns = listed["currency"], listed["campaigns"]
    week = (await server.tool(key, "get_insights", {"level": "campaign", "date_preset": "last_7d"}))["data"]["rows"]
    daily = (await server.tool(key, "get_insights", {"date_preset": "last_7d", "time_increment": 1}))["data"]["rows"]
    prospecting = _campaign(campaigns, "Always-on Prospecting")
    webinar = _campaign(campaigns, "Webinar Leads")
    on_adsets = next(c for c in campaigns if not c.get("daily_budget") and not c.get("lifetime_budget"))

    async with browser_page(server.url, 1280) as page:
        await sign_in(page, key)
        await expect(page.locator("#workspace")).to_have_text("Workspace Demo shop")

        # The table: one row per campaign, spend and results of the last 7 days as get_insights reads them.
        rows = page.locator("#campaign-rows tr")
        await expect(rows).to_have_count(len(campaigns), timeout=20_000)
        row = page.locator(f'#campaign-rows tr[data-campaign="{prospecting["id"]}"]')
        insight = next(r for r in week if r["campaign_id"] == prospecting["id"])
        cells = row.locator("td")
        await expect(cells.nth(0)).to_have_text("Active")
        await expect(cells.nth(1)).to_have_text(format_money(prospecting["daily_budget"], currency) + "/day")
        await expect(cells.nth(2)).to_have_text(f"{insight['purchases']:,} purchases")
        await expect(cells.nth(3)).to_have_text(
            format_money(round(insight["spend_minor"] / insight["purchases"]), currency)
        )
        await expect(cells.nth(4)).to_have_text(format_money(insight["spend_minor"], currency))
        await expect(page.locator(f'#campaign-rows tr[data-campaign="{on_adsets["id"]}"] td.budget')).to_have_text(
            "On ad sets"
        )
        adsets = (await server.tool(key, "list_adsets", {"campaign_id": on_adsets["id"]}))["data"]["adsets"]
        await page.get_by_role("button", name=f"Ad sets of {on_adsets['name']}").click()  # their budgets, in the chat
        await expect(page.locator("#chat-log li.you")).to_have_text(f"You: /adsets {on_adsets['id']}")
        answer = page.locator("#chat-log li.bot").last
        await expect(answer).to_contain_text(adsets[0]["name"], timeout=20_000)
        await expect(page.get_by_label("Message")).to_be_focused()
        await expect(page.locator(f'#campaign-rows tr[data-campaign="{webinar["id"]}"] td').nth(0)).to_have_text(
            "With issues"
        )
        total = sum(r["spend_minor"] for r in week)
        await expect(page.locator("#campaign-totals")).to_contain_text("Total · Last 7 days")
        await expect(page.locator("#campaign-totals")).to_contain_text(format_money(total, currency))

        # The chart: one bar per day of the period, the total in the caption.
        await expect(page.locator("#chart svg rect.bar")).to_have_count(len(daily))
        await expect(page.locator("#chart-caption")).to_contain_text(
            format_money(sum(r["spend_minor"] for r in daily), currency) + " spent"
        )
        await expect(page.locator("#chart svg polyline.line")).to_have_count(1)
        await check_layout(page, "console-overview-1280", tmp_path)

        # Another period: yesterday's numbers.
        yesterday = (await server.tool(key, "get_insights", {"level": "campaign", "date_preset": "yesterday"}))["data"][
            "rows"
        ]
        await page.get_by_label("Period").select_option("yesterday")
        await expect(page.locator("#campaign-totals")).to_contain_text("Total · Yesterday")
        await expect(page.locator("#campaign-totals")).to_contain_text(
            format_money(sum(r["spend_minor"] for r in yesterday), currency)
        )

        # Pause: not held; the row says Off and Facebook has it paused.
        await page.get_by_role("button", name="Pause Always-on Prospecting").click()
        await expect(page.locator("#campaigns-message")).to_contain_text("Paused campaign Always-on Prospecting")
        await expect(row.locator("td").nth(0)).to_have_text("Off")
        status = lambda: server.tool(key, "list_campaigns", {"all_pages": True})  # noqa: E731
        assert _campaign((await status())["data"]["campaigns"], "Always-on Prospecting")["status"] == "PAUSED"

        # Resume is held: a card with Confirm and Reject. Reject drops it; nothing is sent.
        cards = page.locator("#campaign-cards .confirm-card")
        await page.get_by_role("button", name="Resume Always-on Prospecting").click()
        await expect(cards).to_have_count(1)
        await expect(cards.first).to_contain_text("This would set campaign Always-on Prospecting")
        held = (await server.tool(key, "list_confirmations"))["data"]["confirmations"]
        assert [c["op"] for c in held] == ["resume_campaign"]
        await expect(page.locator("#confirmations")).to_contain_text(held[0]["id"])  # the side panel has it too
        await expect(
            page.get_by_role("navigation", name="Sections").get_by_role("link", name="Confirmations (1 waiting)")
        ).to_be_visible()
        await cards.first.get_by_role("button", name="Reject").click()
        await expect(cards.first).to_contain_text(f"Dropped {held[0]['id']}")
        await expect(cards.first.locator(".confirm-title")).to_contain_text("Rejected")
        await expect(cards.first.get_by_role("button")).to_have_count(0)
        assert (await server.tool(key, "list_confirmations"))["data"]["confirmations"] == []
        assert _campaign((await status())["data"]["campaigns"], "Always-on Prospecting")["status"] == "PAUSED"
        await expect(page.locator("#jump-confirmations")).to_have_text("Confirmations")

        # Resume again and Confirm: it runs, the row is Active again, the audit log has it.
        await page.get_by_role("button", name="Resume Always-on Prospecting").click()
        await expect(cards).to_have_count(2)
        await cards.last.get_by_role("button", name="Confirm").click()
        await expect(cards.last).to_contain_text("Resumed", ignore_case=True)
        await expect(cards.last.locator(".confirm-title")).to_contain_text("Confirmed")
        await expect(row.locator("td").nth(0)).to_have_text("Active")
        assert _campaign((await status())["data"]["campaigns"], "Always-on Prospecting")["status"] == "ACTIVE"
        await expect(page.locator("#audit-rows tr", has_text="resume_campaign").first).to_contain_text("ok")

        # A budget edit over the guardrail is held: the card shows old and new amounts; Confirm writes it.
        await page.get_by_role("button", name="Edit budget of Webinar Leads").click()
        field = page.get_by_label(f"New daily budget of Webinar Leads ({currency})")
        await expect(field).to_be_focused()
        await field.fill("90")
        await field.press("Enter")
        await expect(cards).to_have_count(3)
        await expect(cards.last).to_contain_text(
            f"from {format_money(webinar['daily_budget'], currency)} to {format_money(9000, currency)}"
        )
        await cards.last.get_by_role("button", name="Confirm").click()
        await expect(page.locator(f'#campaign-rows tr[data-campaign="{webinar["id"]}"] td.budget')).to_have_text(
            format_money(9000, currency) + "/day"
        )
        assert _campaign((await status())["data"]["campaigns"], "Webinar Leads")["daily_budget"] == "9000"

        # A small cut is not held: written at once. Escape leaves an edit without writing.
        await page.get_by_role("button", name="Edit budget of Always-on Prospecting").click()
        await page.get_by_label(re.compile("New daily budget of Always-on Prospecting")).press("Escape")
        await expect(row.locator("td.budget form")).to_have_count(0)
        await expect(page.get_by_role("button", name="Edit budget of Always-on Prospecting")).to_be_focused()
        await page.get_by_role("button", name="Edit budget of Always-on Prospecting").click()
        await page.get_by_label(re.compile("New daily budget of Always-on Prospecting")).fill("45")
        await page.get_by_role("button", name="Save budget of Always-on Prospecting").click()
        await expect(row.locator("td.budget")).to_have_text(format_money(4500, currency) + "/day")
        await expect(cards).to_have_count(3)
        assert _campaign((await status())["data"]["campaigns"], "Always-on Prospecting")["daily_budget"] == "4500"
        await check_layout(page, "console-actions-1280", tmp_path)
        assert not page.errors, page.errors
        assert not page.missing, f"404s: {page.missing}"
        assert not page.external, page.external


@needs_chromium
async def test_chat_cards_history_markdown_and_keyboard(server, tmp_path):
    from playwright.async_api import expect

    from fi_facebook import chat_messages_at_rest

    workspace, key = await _key(server.runtime, "Chat shop")
    campaigns = (await server.tool(key, "list_campaigns", {"all_pages": True}))["data"]["campaigns"]
    prospecting = _campaign(campaigns, "Always-on Prospecting")
    webinar = _campaign(campaigns, "Webinar Leads")

    async with browser_page(server.url, 1280) as page:
        await sign_in(page, key)
        log = page.locator("#chat-log")
        await expect(log.locator("li.empty")).to_have_count(1)

        # Enter sends; the answer is rendered, not a raw string.
        box = page.get_by_label("Message")
        await box.fill("/status")
        await box.press("Enter")
        await expect(log.locator("li.you")).to_have_text("You: /status")
        await expect(log.locator("li.bot")).to_have_count(1, timeout=20_000)
        await expect(log.locator("li.bot").first).to_contain_text("Demo Store")
        # Tab from the message box reaches the Send button next (once the answer is in and Send is enabled again:
        # a disabled button takes no focus).
        await expect(page.locator("#chat-send")).to_be_enabled()
        await box.focus()
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "chat-send"

        # A held call in the chat is a card with Confirm and Reject, not an error.
        await box.fill(f'/tool update_campaign {{"campaign_id": "{webinar["id"]}", "daily_budget": 12000}}')
        await box.press("Enter")
        card = log.locator("li.bot").nth(1).locator(".confirm-card")
        await expect(card).to_have_count(1, timeout=20_000)
        await expect(card).to_contain_text("This would raise daily budget of campaign Webinar Leads")
        await card.get_by_role("button", name="Confirm").click()
        await expect(card.locator(".message")).not_to_contain_text("ERROR")
        await expect(card.get_by_role("button")).to_have_count(0)
        assert (
            _campaign(
                (await server.tool(key, "list_campaigns", {"all_pages": True}))["data"]["campaigns"], "Webinar Leads"
            )["daily_budget"]
            == "12000"
        )

        assert (await server.tool(key, "pause_campaign", {"campaign_id": prospecting["id"]}))["ok"]
        await box.fill(f'/tool resume_campaign {{"campaign_id": "{prospecting["id"]}"}}')
        await box.press("Enter")
        card = log.locator("li.bot").nth(2).locator(".confirm-card")
        await expect(card).to_have_count(1, timeout=20_000)
        await card.get_by_role("button", name="Reject").click()
        await expect(card).to_contain_text("nothing was sent")
        assert (
            _campaign(
                (await server.tool(key, "list_campaigns", {"all_pages": True}))["data"]["campaigns"],
                "Always-on Prospecting",
            )["status"]
            == "PAUSED"
        )

        # A card whose call is decided by a typed /confirm loses its buttons.
        await box.fill(f'/tool update_campaign {{"campaign_id": "{webinar["id"]}", "daily_budget": 20000}}')
        await box.press("Enter")
        typed = log.locator("li.bot").nth(3).locator(".confirm-card")
        await expect(typed).to_have_count(1, timeout=20_000)
        typed_id = await typed.get_attribute("data-confirmation")
        await box.fill(f"/confirm {typed_id}")
        await box.press("Enter")
        await expect(typed.locator(".confirm-title")).to_contain_text("No longer waiting", timeout=20_000)
        await expect(typed.get_by_role("button")).to_have_count(0)

        # One more held call left waiting: after a reload its card is still there, with the whole history.
        await box.fill(f'/tool resume_campaign {{"campaign_id": "{prospecting["id"]}"}}')
        await box.press("Enter")
        await expect(log.locator("li.bot").nth(5).locator(".confirm-card")).to_have_count(1, timeout=20_000)
        thread = await page.evaluate(
            "() => Object.entries(localStorage).find(([k]) => k.startsWith('admonster.thread.'))[1]"
        )
        # An answer in Markdown (as an LLM writes them) joins the thread: a table, a list, bold and code.
        await server.runtime.store.append_chat_messages(
            workspace.id,
            thread,
            chat_messages_at_rest(
                [
                    {"role": "user", "content": "How did the week go?"},
                    {
                        "role": "assistant",
                        "content": "## This week\n**Spend** rose; use `/campaigns` for more.\n\n"
                        "| Campaign | Spend |\n|---|---:|\n| Prospecting | $342.06 |\n| Webinar | $0.00 |\n\n"
                        "- first point\n- second point\n\n1. one\n2. two",
                    },
                ]
            ),
        )
        await page.reload()
        await expect(page.locator("#token-status")).to_contain_text("Token valid", timeout=20_000)
        await expect(log.locator("li.you")).to_have_count(7)
        await expect(log.locator("li.bot")).to_have_count(7)
        await expect(log.locator("li.you").first).to_have_text("You: /status")
        waiting = log.locator(".confirm-card")
        await expect(waiting).to_have_count(1)  # the used and the rejected ones get no card
        pending = (await server.tool(key, "list_confirmations"))["data"]["confirmations"]
        await expect(waiting).to_have_attribute("data-confirmation", pending[0]["id"])
        await expect(log.locator("li.bot").nth(5).locator(".md")).to_be_hidden()  # the card says it, with buttons
        await expect(waiting.get_by_role("button", name="Reject")).to_be_visible()
        markdown = log.locator("li.bot").last
        await expect(markdown.locator("table th")).to_have_text(["Campaign", "Spend"])
        await expect(markdown.locator("table tbody tr")).to_have_count(2)
        assert await markdown.locator("table tbody td").nth(1).evaluate("e => getComputedStyle(e).textAlign") == "right"
        await expect(markdown.locator("ul li")).to_have_text(["first point", "second point"])
        await expect(markdown.locator("ol li")).to_have_count(2)
        await expect(markdown.locator("strong")).to_have_text("Spend")
        await expect(markdown.locator("code")).to_have_text("/campaigns")
        await expect(markdown.locator("h4")).to_have_text("This week")
        assert "**" not in await markdown.inner_text() and "|---" not in await markdown.inner_text()
        await check_layout(page, "console-chat-1280", tmp_path)
        await log.locator("li.bot").nth(5).screenshot(path=str(tmp_path / "console-chat-card.png"))
        if ARTIFACTS:
            shutil.copyfile(tmp_path / "console-chat-card.png", Path(ARTIFACTS) / "console-chat-card.png")

        # Reject from the side panel: the call is dropped, and its card in the chat says so.
        await page.locator("#confirmations").get_by_role("button", name=f"Reject {pending[0]['id']}").click()
        await expect(page.locator("#confirmations")).to_contain_text("Nothing is waiting for confirmation.")
        await expect(page.locator("#confirmations-message")).to_contain_text(f"Dropped {pending[0]['id']}")
        await expect(waiting.locator(".confirm-title")).to_contain_text("Rejected")
        await expect(waiting.get_by_role("button")).to_have_count(0)
        assert (await server.tool(key, "list_confirmations"))["data"]["confirmations"] == []

        # A new conversation starts empty, and stays the current one after a reload.
        await page.get_by_role("button", name="New conversation").click()
        await expect(log.locator("li.you")).to_have_count(0)
        await expect(box).to_be_focused()
        await page.reload()
        await expect(page.locator("#token-status")).to_contain_text("Token valid", timeout=20_000)
        await expect(log.locator("li.empty")).to_have_count(1)
        await expect(log.locator("li.you")).to_have_count(0)
        assert not page.errors, page.errors
        assert not page.missing, f"404s: {page.missing}"


# ---------------------------------------------------------------------------------------------------------------
# A phone, and the errors
# ---------------------------------------------------------------------------------------------------------------


@needs_chromium
async def test_phone_width_and_a_bad_key(server, tmp_path):
    from playwright.async_api import expect

    _workspace, key = await _key(server.runtime, "Phone shop")
    campaigns = (await server.tool(key, "list_campaigns", {"all_pages": True}))["data"]["campaigns"]
    async with browser_page(server.url, 375, 800) as page:
        await page.get_by_label("Workspace API key").fill("amk_wrong")
        await page.get_by_label("Workspace API key").press("Enter")
        await expect(page.locator("#login-error")).to_contain_text("Sign-in failed: Unknown API key")
        await check_layout(page, "console-login-375", tmp_path)

        await sign_in(page, key)
        await expect(page.locator("#campaign-rows tr")).to_have_count(len(campaigns), timeout=20_000)
        await expect(page.locator("#chart svg rect.bar").first).to_be_visible()
        await expect(page.locator("#workspace")).to_contain_text("Phone shop")
        # The table becomes one block per campaign: every number with its label, nothing to scroll sideways.
        scroller = page.locator("#campaigns-section .table-scroll")
        assert await scroller.evaluate("e => e.scrollWidth <= e.clientWidth")
        prospecting = page.locator("#campaign-rows tr", has_text="Always-on Prospecting")
        await expect(prospecting.locator("th .name")).to_be_visible()
        for label in ("Delivery", "Budget", "Results", "Cost per result", "Amount spent"):
            assert (
                await prospecting.locator(f'td[data-label="{label}"]').evaluate(
                    "e => getComputedStyle(e, '::before').content"
                )
                == f'"{label}"'
            )
        assert await page.locator("#campaign-table thead").is_hidden()
        # The chart is drawn at the phone's width: its axis text stays readable (11 px, not scaled down).
        assert await page.locator("#chart svg").evaluate(
            "s => Math.abs(s.viewBox.baseVal.width - s.getBoundingClientRect().width) < 2"
        )
        pause = page.get_by_role("button", name="Pause Always-on Prospecting")
        await pause.scroll_into_view_if_needed()
        await expect(pause).to_be_visible()
        # The ad account's id is shown whole, under the select.
        selected = (await server.tool(key, "list_ad_accounts"))["data"]["selected"]
        await expect(page.locator("#ad-account-id")).to_contain_text(selected)
        await check_layout(page, "console-375", tmp_path)

        # The actions at phone width: pause, resume held as a card and confirmed, a budget raise held and rejected.
        await pause.click()
        await expect(page.locator("#campaigns-message")).to_contain_text("Paused campaign Always-on Prospecting")
        cards = page.locator("#campaign-cards .confirm-card")
        await page.get_by_role("button", name="Resume Always-on Prospecting").click()
        await expect(cards).to_have_count(1)
        await cards.first.get_by_role("button", name="Confirm").click()
        await expect(cards.first.locator(".confirm-title")).to_contain_text("Confirmed")
        await expect(prospecting.locator('td[data-label="Delivery"]')).to_have_text("Active")
        await page.get_by_role("button", name="Edit budget of Always-on Prospecting").click()
        budget = page.get_by_label(re.compile("New daily budget of Always-on Prospecting"))
        await budget.fill("500")
        await budget.press("Enter")
        await expect(cards).to_have_count(2)
        await expect(cards.last).to_contain_text("from $50.00 to $500.00")
        await check_layout(page, "console-card-375", tmp_path)
        await cards.last.get_by_role("button", name="Reject").click()
        await expect(cards.last.locator(".confirm-title")).to_contain_text("Rejected")
        after = _campaign(
            (await server.tool(key, "list_campaigns", {"all_pages": True}))["data"]["campaigns"],
            "Always-on Prospecting",
        )
        assert after["status"] == "ACTIVE" and after["daily_budget"] == "5000"

        # The section links jump down the long phone page.
        await page.get_by_role("navigation", name="Sections").get_by_role("link", name="Chat").click()
        await expect(page.locator("#chat-section")).to_be_in_viewport()

        await page.get_by_label("Message").fill("/status")
        await page.get_by_role("button", name="Send").click()
        await expect(page.locator("#chat-log li.bot")).to_have_count(1, timeout=20_000)
        await page.get_by_label("Message").fill("/help")
        await page.get_by_role("button", name="Send").click()
        await expect(page.locator("#chat-log li.bot")).to_have_count(2, timeout=20_000)
        await expect(page.locator("#chat-log li.bot").last).to_contain_text("Campaigns:")
        await check_layout(page, "console-chat-375", tmp_path)
        await page.evaluate(
            "() => { const log = document.getElementById('chat-log');"
            " log.scrollTop = log.querySelector('li.bot:last-child').offsetTop - log.offsetTop; }"
        )
        await page.locator("#chat-section").screenshot(path=str(tmp_path / "console-help-375.png"))
        if ARTIFACTS:
            shutil.copyfile(tmp_path / "console-help-375.png", Path(ARTIFACTS) / "console-help-375.png")
        assert not page.errors, page.errors
        assert not page.missing, f"404s: {page.missing}"


@needs_chromium
@pytest.mark.parametrize("width", [1280, 375])
async def test_server_down_says_so(tmp_path, width):
    from playwright.async_api import expect

    stack = AsyncExitStack()
    try:
        url, runtime = await stack.enter_async_context(running_server(tmp_path))
        _workspace, key = await _key(runtime, "Down shop")
        async with browser_page(url, width) as page:
            await sign_in(page, key)
            await expect(page.locator("#campaign-rows tr").first).to_be_visible(timeout=20_000)
            await expect(page.locator("#offline")).to_be_hidden()
            await stack.aclose()  # the server stops; the page stays open

            await page.get_by_role("button", name="Refresh", exact=True).click()
            await expect(page.locator("#offline")).to_be_visible()
            await expect(page.locator("#offline")).to_contain_text("did not answer")
            await expect(page.locator("#campaigns-message")).to_contain_text("did not answer")
            await page.get_by_label("Message").fill("/status")
            await page.get_by_label("Message").press("Enter")
            await expect(page.locator("#chat-log li.note")).to_contain_text(
                "The Ad Monster server did not answer. Check that `admonster serve` is running"
            )
            await expect(page.locator("#chat-send")).to_be_enabled()
            await check_layout(page, f"console-down-{width}", tmp_path)
            assert not page.errors, page.errors
    finally:
        await stack.aclose()
