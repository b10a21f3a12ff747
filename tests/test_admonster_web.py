"""The web console: its files and headers over HTTP, and a real browser (Debian's Chromium driven by Playwright)
clicking through sign-in, connecting Facebook with the sandbox's OAuth dialog, choosing the ad account, the page
in the page-selection modal and the Instagram account, one chat exchange, a held call confirmed, and the audit log."""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from pathlib import Path

import aiohttp
import pytest

import admonster_web
from admonster_runtime import SANDBOX_AUTOCONNECT
from fb_utils import format_money, workspace_files_dir
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
# Set ADMONSTER_TEST_ARTIFACTS to a folder to keep the browser test's screenshot (console.png) for a look.
ARTIFACTS = os.environ.get("ADMONSTER_TEST_ARTIFACTS")


class Server:
    def __init__(self, url: str, runtime) -> None:
        self.url, self.runtime = url, runtime

    async def tool(self, key: str, op: str, args: dict | None = None) -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.url}/v1/tools/facebook",
                json={"op": op, "args": args or {}},
                headers={"Authorization": f"Bearer {key}"},
            ) as resp:
                return await resp.json()


@pytest.fixture
async def server(tmp_path):
    async with running_server(tmp_path) as (url, runtime):
        yield Server(url, runtime)


async def _workspace_key(runtime, name: str) -> tuple[object, str]:
    """A workspace that is not connected to Facebook yet (the sandbox would otherwise sign its demo user in)."""
    workspace = await runtime.store.ensure_workspace(name)
    await runtime.store.set_setting(workspace.id, SANDBOX_AUTOCONNECT, False)
    return workspace, await runtime.store.create_api_key(workspace.id)


# ---------------------------------------------------------------------------------------------------------------
# The files, over HTTP
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/console"])
async def test_console_page_is_served_with_a_strict_policy(server, path):
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + path) as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            body = await resp.text()
            policy = resp.headers["Content-Security-Policy"]
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "<title>Ad Monster console</title>" in body
    assert 'src="/console/static/console.js"' in body and 'href="/console/static/console.css"' in body
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy  # nothing from outside, no inline script


async def test_static_files_and_nothing_else(server):
    async with aiohttp.ClientSession() as session:
        for name, content_type in admonster_web.STATIC_FILES.items():
            async with session.get(f"{server.url}/console/static/{name}") as resp:
                assert resp.status == 200 and resp.content_type == content_type, name
                assert await resp.read() == (admonster_web.static_dir() / name).read_bytes()
        for name in [
            "index.htm",
            "..%2fadmonster_web.py",
            "%2e%2e%2fpyproject.toml",
            "../admonster_server.py",
            "nope.js",
        ]:
            async with session.get(f"{server.url}/console/static/{name}") as resp:
                assert resp.status == 404, name
                assert "import" not in await resp.text()
        async with session.get(f"{server.url}/console") as resp:  # the console needs no key; the API does
            assert resp.status == 200
        async with session.post(f"{server.url}/v1/tools/facebook", json={"op": "token_status"}) as resp:
            assert resp.status == 401


def test_console_fetches_nothing_from_outside_and_never_writes_html():
    folder = admonster_web.static_dir()
    assert folder == Path(admonster_web.__file__).resolve().parent / admonster_web.STATIC_FOLDER
    served = {"index.html", *admonster_web.STATIC_FILES}
    assert served == {p.name for p in folder.iterdir() if p.is_file()}, (
        "every file in the folder is served, and only those"
    )
    for name in served:
        text = (folder / name).read_text()
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), name
        assert not re.search(r"@import|url\(\s*[\"']?(https?:)?//", text), name
    script = (folder / "console.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


def test_pyproject_ships_the_console_files():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    data_files = pyproject["tool"]["setuptools"]["data-files"]
    assert any(
        Path(pattern).parent.name == admonster_web.STATIC_FOLDER
        for patterns in data_files.values()
        for pattern in patterns
    )
    assert "admonster_web" in pyproject["tool"]["setuptools"]["py-modules"]


# ---------------------------------------------------------------------------------------------------------------
# A real browser
# ---------------------------------------------------------------------------------------------------------------


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _png_is_not_blank(data: bytes) -> bool:
    """More than one colour among the decoded scanlines (a blank page would be a single colour)."""
    chunks, position = [], 8
    while position < len(data):
        length = struct.unpack(">I", data[position : position + 4])[0]
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            chunks.append(data[position + 8 : position + 8 + length])
        position += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    return len(set(raw[i : i + 3] for i in range(1, min(len(raw), 400_000), 97))) > 8


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed at /usr/bin/chromium "
    "(`make test` installs it: apt-get install chromium)",
)
async def test_console_in_a_real_browser(server, tmp_path):
    from playwright.async_api import async_playwright, expect

    runtime = server.runtime
    workspace, key = await _workspace_key(runtime, "browser")
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{server.url}/v1/chat",
            json={"thread_id": "probe", "message": "/status"},
            headers={"Authorization": f"Bearer {key}"},
        ) as resp:
            chat_exists = resp.status != 404

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        # A fresh, empty profile for this run (Playwright's launch makes one; --user-data-dir is its to set).
        context = await browser.new_context(viewport={"width": 1280, "height": 1400}, timezone_id="Asia/Tokyo")
        page = await context.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        external: list[str] = []
        page.on(
            "request",
            lambda request: (
                external.append(request.url)
                if not request.url.startswith(("http://127.0.0.1", "data:", "blob:http://127.0.0.1"))
                else None
            ),
        )
        try:
            await page.goto(server.url + "/")
            await expect(page.get_by_text("Sandbox mode")).to_be_visible()

            # A wrong key is refused with a clear message.
            await page.get_by_label("Workspace API key").fill("amk_wrong")
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.locator("#login-error")).to_contain_text("Sign-in failed: Unknown API key")

            # The right key: not connected yet.
            await page.get_by_label("Workspace API key").fill(key)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.locator("#token-status")).to_contain_text("Not connected")
            await expect(page.get_by_role("combobox", name="Ad account")).to_be_disabled()
            await expect(page.get_by_role("button", name="Disconnect")).to_be_disabled()
            await expect(page.locator("#campaign-rows")).to_have_text("Connect Facebook to see your campaigns.")

            # Connect: the sandbox's consent dialog opens in a window; Continue lands on our callback page.
            async with page.expect_popup() as popup_info:
                await page.get_by_role("button", name="Connect Facebook").click()
            popup = await popup_info.value
            await popup.get_by_role("button", name=re.compile(r"^Continue as")).click()
            await expect(popup.get_by_role("heading", name="Facebook connected")).to_be_visible()
            await popup.close()
            await expect(page.locator("#token-status")).to_contain_text("Token valid", timeout=15_000)
            await expect(page.locator("#token-details")).to_contain_text("Scopes: ads_management")
            await expect(page.locator("#connection-message")).to_have_text("Facebook connected.")
            assert (await runtime.store.load_token(workspace.id)) is not None

            # The JPY ad account.
            accounts = (await server.tool(key, "list_ad_accounts"))["data"]["accounts"]
            jpy = next(a for a in accounts if a["currency"] == "JPY")
            select = page.get_by_role("combobox", name="Ad account")
            await expect(select).to_be_enabled()
            await select.select_option(jpy["id"])
            await expect(page.locator("#ad-account-message")).to_contain_text(
                f"Selected {jpy['name']} ({jpy['id']}), currency JPY"
            )
            assert await runtime.store.get_selection(workspace.id, "ad_account") == jpy["id"]
            # The campaign table follows the account: its campaigns, in yen.
            jpy_campaigns = (await server.tool(key, "list_campaigns", {"all_pages": True}))["data"]["campaigns"]
            await expect(page.locator("#campaign-rows tr[data-campaign]")).to_have_count(len(jpy_campaigns))
            await expect(page.locator("#campaign-totals")).to_contain_text("¥")
            # An awareness campaign's result is impressions, its cost per 1,000 (as Ads Manager's CPM).
            awareness = next(c for c in jpy_campaigns if c["objective"] == "OUTCOME_AWARENESS")
            week = (await server.tool(key, "get_insights", {"level": "campaign", "date_preset": "last_7d"}))["data"][
                "rows"
            ]
            seen = next(r for r in week if r["campaign_id"] == awareness["id"])
            cost = page.locator(
                f'#campaign-rows tr[data-campaign="{awareness["id"]}"] td[data-label="Cost per result"]'
            )
            await expect(cost).to_have_text(
                format_money(round(seen["spend_minor"] * 1000 / seen["impressions"]), "JPY") + " per 1,000"
            )

            # The page-selection modal: the only page was selected automatically; select it from its card.
            pages = (await server.tool(key, "list_pages"))["data"]["pages"]
            assert len(pages) == 1
            demo_page = pages[0]
            await expect(page.locator("#page-current")).to_contain_text("selected automatically")
            await page.get_by_role("button", name="Change page").click()
            dialog = page.get_by_role("dialog", name="Select a Facebook page")
            await expect(dialog).to_be_visible()
            card = dialog.get_by_role("listitem", name=demo_page["name"])
            await expect(card).to_contain_text("Selected")
            await expect(card).to_contain_text("Your tasks: " + ", ".join(demo_page["tasks"]))
            await expect(card).to_contain_text(f"Instagram account: {demo_page['instagram_account_id']}")
            await card.get_by_role("button", name=f"Select page {demo_page['name']}").click()
            await expect(dialog).to_be_hidden()
            await expect(page.locator("#page-message")).to_contain_text(
                f"Selected page {demo_page['name']} ({demo_page['id']})"
            )
            await expect(page.locator("#page-current")).to_contain_text(demo_page["name"])

            # The Instagram account linked to that page.
            instagram = page.get_by_role("combobox", name="Instagram account")
            await expect(instagram).to_have_value(demo_page["instagram_account_id"])
            await expect(page.locator("#instagram-current")).to_contain_text("Ads run on Instagram as @")
            await instagram.select_option(demo_page["instagram_account_id"])
            await expect(page.locator("#instagram-message")).to_contain_text(f"({demo_page['instagram_account_id']})")

            # One chat exchange.
            await page.get_by_label("Message").fill("/status")
            await page.get_by_role("button", name="Send").click()
            await expect(page.locator("#chat-log li.you")).to_have_text("You: /status")
            if chat_exists:
                reply = page.locator("#chat-log li.bot")
                await expect(reply).to_have_count(1, timeout=20_000)
                assert len((await reply.inner_text()).strip()) > len("Ad Monster:")
            else:
                await expect(page.locator("#chat-log li.note")).to_contain_text(
                    "Chat needs an LLM (ADMONSTER_LLM_BASE_URL)"
                )

            # A chart: the picture is shown in the chat, fetched with the key (the file URL alone is refused).
            out = workspace_files_dir(runtime.settings.home, workspace.id) / "out"
            await page.get_by_label("Message").fill(
                '/tool chart_insights {"date_preset": "last_30d", "out_dir": "out"}'
            )
            await page.get_by_role("button", name="Send").click()
            if chat_exists:
                chart = page.locator("#chat-log li.bot img.file-image")
                await expect(chart).to_have_count(1, timeout=30_000)
                await page.wait_for_function(
                    "() => { const i = document.querySelector('#chat-log img.file-image');"
                    " return i && i.complete && i.naturalWidth > 0; }",
                    timeout=15_000,
                )
                assert await chart.evaluate("i => i.naturalWidth") == 1200
                assert (await chart.get_attribute("src")).startswith("blob:http://127.0.0.1")
                # the person reads the file's own name; the server's unguessable prefix stays in the URL only
                assert re.fullmatch(r"chart-act_\d+-last_30d\.png", await chart.get_attribute("alt"))
                file_url = await page.evaluate(
                    "() => performance.getEntriesByType('resource').map(e => e.name)"
                    ".find(n => n.includes('/v1/files/'))"
                )
                async with aiohttp.ClientSession() as session:
                    async with session.get(file_url) as resp:  # no key: nothing
                        assert resp.status == 401
                await expect(page.locator("#chat-log li.bot").last).to_contain_text("Tools used: chart_insights")
                await page.locator("#chat-log li.bot").last.screenshot(path=str(tmp_path / "console-chart.png"))

                # A CSV export: a download link with the file's name.
                await page.get_by_label("Message").fill(
                    '/tool export_insights {"date_preset": "last_7d", "out_dir": "out"}'
                )
                await page.get_by_role("button", name="Send").click()
                link = page.locator("#chat-log li.bot a.file-link", has_text=re.compile(r"\.csv$"))
                await expect(link).to_have_count(1, timeout=30_000)
                async with page.expect_download() as download_info:
                    await link.click()
                download = await download_info.value
                saved = tmp_path / "downloaded.csv"
                await download.save_as(saved)
                assert download.suggested_filename.endswith(".csv")
                assert saved.read_bytes() == next(out.glob("*.csv")).read_bytes()

            # A call the safety gate holds appears under Pending confirmations; confirming it writes the audit log.
            campaigns = (await server.tool(key, "list_campaigns", {"status": ["ACTIVE"]}))["data"]["campaigns"]
            target = campaigns[0]
            assert (await server.tool(key, "pause_campaign", {"campaign_id": target["id"]}))["ok"]
            held = await server.tool(key, "resume_campaign", {"campaign_id": target["id"]})
            confirmation = held["data"]["confirmation_id"]
            await page.get_by_role("button", name="Refresh confirmations").click()
            await page.get_by_role("button", name=f"Confirm {confirmation}").click()
            await expect(page.locator("#confirmations-message")).not_to_contain_text("ERROR")
            await expect(page.locator("#confirmations")).to_contain_text("Nothing is waiting for confirmation.")
            audit = page.locator("#audit-rows")
            await expect(audit.locator("tr", has_text="resume_campaign")).to_contain_text("ok")
            await expect(audit.locator("tr", has_text="pause_campaign")).to_be_visible()
            entries = (await server.tool(key, "audit_log"))["data"]["entries"]
            assert entries[0]["op"] == "resume_campaign" and entries[0]["outcome"] == "ok"
            # times in the viewer's zone, named (the browser here is in Tokyo): never the stored UTC string
            from datetime import datetime
            from zoneinfo import ZoneInfo

            stored = datetime.fromisoformat(entries[0]["created_at"])
            when = await audit.locator("tr", has_text="resume_campaign").locator("td").nth(1).inner_text()
            in_tokyo = stored.astimezone(ZoneInfo("Asia/Tokyo"))
            assert f"{in_tokyo:%H:%M}" in when and ("GMT+9" in when or "JST" in when), when
            assert entries[0]["created_at"][:16].replace("T", " ") not in when

            shot = tmp_path / "console.png"
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await context.close()
            await browser.close()

    data = shot.read_bytes()
    if ARTIFACTS:
        Path(ARTIFACTS).mkdir(parents=True, exist_ok=True)
    if ARTIFACTS and (tmp_path / "console-chart.png").exists():
        shutil.copyfile(tmp_path / "console-chart.png", Path(ARTIFACTS) / "console-chart.png")
    width, height = _png_size(data)
    assert width >= 1000 and height >= 800 and len(data) > 30_000 and _png_is_not_blank(data)
    if ARTIFACTS:
        shutil.copyfile(shot, Path(ARTIFACTS) / "console.png")
    assert not page_errors, page_errors
    assert not external, f"the console fetched from outside: {external}"
