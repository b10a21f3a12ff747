"""Files belong to a workspace, tried as workspace beta would against alpha on `admonster serve` over real HTTP: the
files ops write land in each workspace's own folder under unguessable names; out_dir/filename never leave it; remote
callers read only files their workspace uploaded (POST /v1/files) and never learn whether a server path exists; the
local terminal still reads the person's own files."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

import admonster_server
from fb_utils import UPLOADS_DIR, workspace_files_dir
from test_fb_creative import png_bytes
from testkit import workspaces_on_a_server


class Tenant:
    def __init__(self, url: str, runtime, workspace, key: str) -> None:
        self.url, self.runtime, self.workspace, self.key = url, runtime, workspace, key

    @property
    def folder(self) -> Path:
        return workspace_files_dir(self.runtime.settings.home, self.workspace.id)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def tool(self, op: str, args: dict) -> dict:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.url}/v1/tools/facebook", json={"op": op, "args": args}, headers=self.headers
            ) as resp:
                assert resp.status == 200
                return await resp.json()

    async def get(self, path: str) -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{self.url}{path}", headers=self.headers) as resp:
                return resp.status, await resp.read()

    async def upload(self, name: str, data: bytes) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.url}/v1/files", params={"name": name}, data=data, headers=self.headers
            ) as resp:
                return resp.status, await resp.json()

    async def mcp(self, op: str, args: dict) -> dict:
        call = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "facebook", "arguments": {"op": op, "args": args}},
        }
        headers = {**self.headers, "Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{self.url}/mcp", json=call, headers=headers) as resp:
                assert resp.status == 200
                return (await resp.json())["result"]


@pytest.fixture
async def tenants(tmp_path):
    async with workspaces_on_a_server(tmp_path) as (url, runtime, made):
        yield [Tenant(url, runtime, workspace, key) for workspace, key in made]


def _files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _one_line(answer: dict) -> str:
    assert answer["ok"] is False and answer["text"].startswith("ERROR validation") and "Fix:" in answer["text"], answer
    assert "\n" not in answer["text"] and "Traceback" not in answer["text"]
    return answer["text"]


async def test_each_workspace_writes_its_own_folder_under_unguessable_names(tenants):
    alpha, _beta = tenants
    chart = await alpha.tool("chart_insights", {"date_preset": "last_7d"})
    assert chart["ok"], chart
    [name] = chart["files"]
    path = alpha.folder / name
    assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"
    assert path.resolve().is_relative_to(alpha.folder.resolve()) and not Path(name).is_absolute()
    # The name starts with a random token: the same chart made twice has two names, neither predictable.
    again = await alpha.tool("chart_insights", {"date_preset": "last_7d"})
    assert (
        again["files"][0] != name and Path(name).name.split("-", 1)[1] == Path(again["files"][0]).name.split("-", 1)[1]
    )
    assert len(Path(name).name.split("-", 1)[0]) == 24
    # No server path in the answer, anywhere.
    home = str(alpha.runtime.settings.home)
    assert home not in chart["text"] and home not in str(chart["data"]) and home not in str(chart["files"])
    assert not (Path.cwd() / "admonster-reports").exists() or not any(
        (Path.cwd() / "admonster-reports").glob(f"*{Path(name).name}")
    )


async def test_beta_cannot_read_alphas_chart_through_upload_image(tenants):
    alpha, beta = tenants
    chart = await alpha.tool("chart_insights", {"date_preset": "last_7d"})
    [name] = chart["files"]
    full = str(alpha.folder / name)
    lines = set()
    for source in (
        full,
        name,
        f"admonster-reports/{Path(name).name}",
        Path(name).name,
        f"../{alpha.workspace.id}/{name}",
    ):
        answer = await beta.tool("upload_image", {"source": source})
        lines.add(_one_line(answer).replace(repr(source[:80]), "X"))
        assert "hash" not in (answer["data"] or {})
    # The same line for a path that exists, one that does not and one that is forbidden.
    missing = await beta.tool("upload_image", {"source": "/no/such/file.png"})
    assert _one_line(missing).replace(repr("/no/such/file.png"), "X") in lines and len(lines) == 1


async def test_beta_cannot_overwrite_alphas_export(tenants):
    alpha, beta = tenants
    first = await alpha.tool("export_insights", {"date_preset": "last_7d", "filename": "spend.csv"})
    second = await beta.tool("export_insights", {"date_preset": "last_7d", "filename": "spend.csv"})
    assert first["ok"] and second["ok"], (first, second)
    a_path, b_path = alpha.folder / first["files"][0], beta.folder / second["files"][0]
    assert a_path != b_path and a_path.name.endswith("-spend.csv") and b_path.name.endswith("-spend.csv")
    status, data = await alpha.get(first["file_urls"][0])
    assert status == 200 and data == a_path.read_bytes()  # alpha's link still works
    assert (await beta.get(first["file_urls"][0]))[0] == 404  # and is alpha's only
    assert (await alpha.get(second["file_urls"][0]))[0] == 404


@pytest.mark.parametrize(
    "args",
    [
        {"out_dir": "__ABS__"},
        {"out_dir": "../"},
        {"out_dir": "../../x"},
        {"out_dir": "~/x"},
        {"filename": "__ABS__/planted.csv"},
        {"filename": "../planted.csv"},
        {"filename": "a/../../planted.csv"},
        {"out_dir": "link"},
    ],
)
async def test_beta_cannot_write_outside_its_folder(tenants, tmp_path, args):
    _alpha, beta = tenants
    outside = tmp_path / "outside"
    outside.mkdir()
    beta.folder.mkdir(parents=True, exist_ok=True)
    (beta.folder / "link").symlink_to(outside, target_is_directory=True)  # a symlink inside leading out
    args = {k: v.replace("__ABS__", str(outside)) for k, v in args.items()}
    before = _files_under(tmp_path)
    answer = await beta.tool("export_insights", {"date_preset": "last_7d", **args})
    text = _one_line(answer)
    assert str(beta.runtime.settings.home) not in text
    assert _files_under(tmp_path) == before and not any(outside.iterdir())  # nothing written anywhere


async def test_upload_route_serves_its_own_workspace_only(tenants, monkeypatch):
    alpha, beta = tenants
    status, body = await alpha.upload("summer sale.png", png_bytes())
    assert status == 200 and body["ok"], body
    stored = body["file"]
    assert stored.endswith("-summer-sale.png") and body["size"] == len(png_bytes())
    assert str(alpha.runtime.settings.home) not in str(body)
    assert (alpha.folder / UPLOADS_DIR / stored).read_bytes() == png_bytes()

    used = await alpha.tool("upload_image", {"source": stored})
    assert used["ok"] and len(used["data"]["hash"]) == 32, used
    assert used["data"]["name"] == "summer-sale.png"  # the person's name, without the random token
    assert str(alpha.runtime.settings.home) not in used["text"]
    refused = await beta.tool("upload_image", {"source": stored})
    missing = await beta.tool("upload_image", {"source": "0" * 24 + "-summer-sale.png"})
    assert _one_line(refused).replace(stored, "X") == _one_line(missing).replace("0" * 24 + "-summer-sale.png", "X")
    # Over MCP on HTTP too.
    over_mcp = await beta.mcp("upload_image", {"source": stored})
    assert over_mcp["isError"] is True and over_mcp["content"][0]["text"].startswith("ERROR validation")

    # Bad names, an empty body, and a file over the limit: refused, nothing left behind.
    for name in ("", "../x.png", "/etc/x.png", "a/b.png"):
        status, body = await beta.upload(name, b"x")
        assert status == 400 and body["text"].startswith("ERROR validation"), name
    assert (await beta.upload("empty.png", b""))[0] == 400
    monkeypatch.setattr(admonster_server, "UPLOAD_MAX_BYTES", 1000)
    status, body = await beta.upload("big.png", b"x" * 5000)
    assert status == 413 and body["text"].startswith("ERROR validation")
    assert _files_under(beta.folder / UPLOADS_DIR) == set()


async def test_remote_errors_do_not_reveal_whether_a_path_exists(tenants, tmp_path):
    alpha, beta = tenants
    home = alpha.runtime.settings.home
    real, fake = str(home / "secret.key"), str(home / "no-such.key")
    assert Path(real).exists() and not Path(fake).exists()
    for op, field, extra in (
        ("add_users", "source", {"audience_id": "120210000000000001"}),
        ("launch_experiment", "plan_file", {}),
        ("upload_video", "path", {}),
    ):
        texts = []
        for value in (real, fake):
            answer = await beta.tool(op, {**extra, field: value})
            texts.append(_one_line(answer).replace(repr(value[:80]), "X"))
        assert texts[0] == texts[1], (op, texts)
        answers = [await beta.mcp(op, {**extra, field: value}) for value in (real, fake)]
        mcp_texts = [a["content"][0]["text"].replace(repr(v[:80]), "X") for a, v in zip(answers, (real, fake))]
        assert all(a["isError"] for a in answers) and mcp_texts[0] == mcp_texts[1], (op, mcp_texts)


async def test_local_chat_still_reads_the_persons_own_files(tenants, tmp_path):
    alpha, _ = tenants
    picture = tmp_path / "mine.png"
    picture.write_bytes(png_bytes(640, 480))
    facebook = await alpha.runtime.facebook_for(alpha.workspace)
    for interface in ("chat", "cli", "mcp"):
        answer = await facebook.call("upload_image", {"source": str(picture)}, interface=interface)
        assert answer.ok and len(answer.data["hash"]) == 32, (interface, answer.text)
    # The same path over HTTP is refused.
    remote = await alpha.tool("upload_image", {"source": str(picture)})
    _one_line(remote)
    # Files still go to the workspace's folder for local callers, shown with their full path there.
    chart = await facebook.call("chart_insights", {"date_preset": "last_7d"}, interface="chat")
    assert chart.ok and Path(chart.files[0]).is_relative_to(alpha.folder) and chart.files[0] in chart.text


def _plan_with_images(images: list[str]) -> dict:
    return {
        "name": "Photo test",
        "hypothesis": "A warmer photo gets more clicks",
        "variable": "creative",
        "metric": "ctr",
        "campaign": {"objective": "OUTCOME_TRAFFIC"},
        "adset": {"targeting": {"geo_locations": {"countries": ["US"]}}},
        "daily_budget": 3000,
        "variants": [
            {
                "name": label,
                "creative": {
                    "kind": "image",
                    "image": image,
                    "message": f"Offer {label}",
                    "link": "https://example.com/offer",
                    "headline": f"Look {label}",
                },
            }
            for label, image in zip("AB", images)
        ],
    }


async def test_an_uploaded_plan_cannot_name_server_files(tenants, tmp_path):
    """What a plan file says is confined like typed arguments: beta's uploaded plan naming alpha's chart or any server
    file is refused with the same one line as a missing file, and nothing is created; naming its own uploads works."""
    import yaml

    alpha, beta = tenants
    chart = await alpha.tool("chart_insights", {"date_preset": "last_7d"})
    server_file = tmp_path / "server.png"
    server_file.write_bytes(png_bytes(640, 480))
    texts = set()
    for images in ([str(alpha.folder / chart["files"][0]), str(server_file)], [chart["files"][0], "/no/such.png"]):
        status, upload = await beta.upload("plan.yaml", yaml.safe_dump(_plan_with_images(images)).encode())
        assert status == 200, upload
        answer = await beta.tool("launch_experiment", {"plan_file": upload["file"]})
        text = _one_line(answer)
        assert "is not a file uploaded to this workspace" in text, answer
        texts.add(text.replace(repr(images[0][:80]), "X"))
    assert len(texts) == 1  # an existing server file and a missing one read the same
    campaigns = await beta.tool("list_campaigns", {})
    assert campaigns["ok"] and campaigns["data"]["campaigns"], campaigns  # the demo world's own
    assert not [c for c in campaigns["data"]["campaigns"] if c["name"].startswith("Photo test")], campaigns

    names = []
    for index in range(2):
        status, upload = await beta.upload(f"photo-{index}.png", png_bytes(1080 + 120 * index, 1080 + 120 * index))
        names.append(upload["file"])
    status, upload = await beta.upload("plan.yaml", yaml.safe_dump(_plan_with_images(names)).encode())
    held = await beta.tool("launch_experiment", {"plan_file": upload["file"]})
    assert held["data"].get("error") == "confirmation_required" or held["ok"], held


async def test_a_local_plan_reads_its_images_beside_it_and_its_confirmation_keeps_what_it_showed(tenants, tmp_path):
    """The terminal's `/abtest folder/plan.yaml` finds `lifestyle.jpg` beside the plan (not in the chat's working
    folder); a held launch runs the plan it showed even if the file changes before /confirm."""
    import yaml

    from admonster_chat import Chat

    alpha, _ = tenants
    folder = tmp_path / "campaigns"
    folder.mkdir()
    for index, name in enumerate(("lifestyle.png", "product.png")):
        (folder / name).write_bytes(png_bytes(1080 + 120 * index, 1080 + 120 * index))
    plan_path = folder / "plan.yaml"
    plan_path.write_text(yaml.safe_dump({**_plan_with_images(["lifestyle.png", "product.png"]), "status": "ACTIVE"}))
    chat = Chat(alpha.runtime, alpha.workspace, console=None, thread_id="plans", stream=False)
    held, _failed = await chat.answer(f"/abtest {plan_path}")
    assert "No image file" not in held and "confirm" in held.lower(), held  # held for its ACTIVE status, images found
    facebook = await alpha.runtime.facebook_for(alpha.workspace)
    pending = await facebook.call("list_confirmations", {})
    [confirmation] = pending.data["confirmations"]
    plan_path.write_text(yaml.safe_dump({**_plan_with_images(["lifestyle.png", "product.png"]), "name": "Changed"}))
    done = await facebook.call("confirm", {"confirm": confirmation["id"]})
    assert done.ok, done.text
    listed = await facebook.call("list_experiments", {})
    assert [e["name"] for e in listed.data["experiments"]] == ["Photo test"]
