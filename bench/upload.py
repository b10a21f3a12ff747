"""Benchmark 5: a chunked video upload of a 200 MB file streamed from disk, beside a plain streamed aiohttp POST.

    .venv/bin/python bench/upload.py            # print the figures (bench/run.py runs it as part of `make bench`)

Each upload runs in a fresh subprocess (clean memory figures): it reads its peak resident set (VmHWM, else
ru_maxrss) after setting up and again after the upload; the difference is what the upload cost in memory (target
< 64 MB: the file is never read into memory whole). Throughput (MB/s) of upload_video_file (start, one request per
chunk Facebook names, finish) is set beside the same protocol written with nothing but aiohttp (each chunk read and
POSTed as is) against the same sandbox, running in its own process like a remote Graph API, and printed as a ratio.
(One 200 MB POST is not an option: the sandbox, like Facebook, refuses bodies over its limit, 64 MB, with HTTP 413;
files that large go chunked.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RSS_TARGET_MB = 64.0


def peak_rss_kb() -> int:
    """The process's peak resident set in KiB (VmHWM from /proc, else ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def make_video(path: Path, size: int) -> None:
    """A sparse file with an MP4 header: size bytes on the wire, almost nothing on disk."""
    with open(path, "wb") as handle:
        handle.write(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
        handle.truncate(size)


# -- the child: one upload, measured -------------------------------------------------------------------------------


async def child_ours(url: str, grant: dict, account: str, path: str) -> dict:
    import fb_creative
    from fb_utils import GraphClient, OpContext

    async with GraphClient(grant["access_token"], app_secret=grant["app_secret"], base_url=url, timeout=300) as graph:
        await graph.get("me")  # the session and its connection are set up before measuring
        before = peak_rss_kb()
        started = time.perf_counter()
        result = await fb_creative.upload_video_file(
            OpContext(graph=graph, ad_account_id=account), account, path, wait=False
        )
        seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "rss_before_kb": before,
            "rss_after_kb": peak_rss_kb(),
            "chunks": result["chunks"],
            "requests": graph.request_count - 1,
        }


async def child_plain(url: str, grant: dict, account: str, path: str) -> dict:
    """The same file, the same start/transfer/finish, with nothing but aiohttp: the floor our client is held to."""
    from fb_utils import DEFAULT_API_VERSION, appsecret_proof

    params = {
        "access_token": grant["access_token"],
        "appsecret_proof": appsecret_proof(grant["access_token"], grant["app_secret"]),
    }
    endpoint = f"{url}/{DEFAULT_API_VERSION}/{account}/advideos"
    size = os.path.getsize(path)
    requests = 0

    async def post(data: dict | aiohttp.FormData) -> dict:
        nonlocal requests
        requests += 1
        async with session.post(endpoint, params=params, data=data) as resp:
            answer = await resp.json(content_type=None)
            if resp.status != 200:
                raise RuntimeError(f"plain upload refused: {answer}")
            return answer

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        async with session.get(f"{url}/{DEFAULT_API_VERSION}/me", params=params) as resp:
            await resp.read()
        before = peak_rss_kb()
        started = time.perf_counter()
        opened = await post({"upload_phase": "start", "file_size": str(size)})
        offset, end = int(opened["start_offset"]), int(opened["end_offset"])
        with open(path, "rb") as handle:
            while offset < end:
                handle.seek(offset)
                form = aiohttp.FormData(
                    {
                        "upload_phase": "transfer",
                        "upload_session_id": opened["upload_session_id"],
                        "start_offset": str(offset),
                    }
                )
                form.add_field(
                    "video_file_chunk",
                    handle.read(end - offset),
                    filename="bench.mp4",
                    content_type="application/octet-stream",
                )
                answer = await post(form)
                offset, end = int(answer["start_offset"]), int(answer["end_offset"])
        await post({"upload_phase": "finish", "upload_session_id": opened["upload_session_id"], "title": "plain"})
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "rss_before_kb": before, "rss_after_kb": peak_rss_kb(), "requests": requests}


def run_child(kind: str, url: str, grant: dict, account: str, path: Path) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--account", account, "--file", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "ADMONSTER_BENCH_GRANT": json.dumps(grant)},
    )
    if output.returncode != 0:
        raise RuntimeError(f"the {kind} upload failed:\n{output.stderr[-2000:]}")
    result = json.loads(output.stdout.strip().splitlines()[-1])
    result["delta_mb"] = (result["rss_after_kb"] - result["rss_before_kb"]) / 1024
    return result


# -- the parent: the file, the sandbox, the side-by-side ----------------------------------------------------------


async def _grant(url: str) -> tuple[dict, str]:
    from fb_utils import GraphClient

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/__sandbox/tokens") as resp:
            grant = await resp.json()
    async with GraphClient(grant["access_token"], app_secret=grant["app_secret"], base_url=url) as graph:
        accounts = await graph.get_all("me/adaccounts", {"fields": "id,currency"})
    return grant, next(a["id"] for a in accounts if a["currency"] == "USD")


async def bench_upload(size_mb: int = 200, rounds: int = 2) -> dict:
    from run import external_sandbox

    size = size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory(prefix="admonster-bench-") as folder:
        path = Path(folder) / "bench.mp4"
        make_video(path, size)
        ours, plain = [], []
        for _ in range(rounds):  # interleaved, each in a fresh sandbox so neither pays for the other's stored bytes
            for kind, results in (("plain", plain), ("ours", ours)):
                async with external_sandbox() as url:
                    grant, account = await _grant(url)
                    results.append(await asyncio.to_thread(run_child, kind, url, grant, account, path))
    best_ours = min(ours, key=lambda r: r["seconds"])
    best_plain = min(plain, key=lambda r: r["seconds"])
    worst_delta = max(r["delta_mb"] for r in ours)
    return {
        "size_mb": size_mb,
        "rounds": rounds,
        "ours_s": best_ours["seconds"],
        "plain_s": best_plain["seconds"],
        "ours_mb_s": size_mb / best_ours["seconds"],
        "plain_mb_s": size_mb / best_plain["seconds"],
        "ratio": best_plain["seconds"] / best_ours["seconds"],
        "chunks": best_ours["chunks"],
        "requests": best_ours["requests"],
        "ours_delta_mb": worst_delta,
        "plain_delta_mb": max(r["delta_mb"] for r in plain),
        "target": f"peak RSS delta < {RSS_TARGET_MB:.0f} MB",
        "ok": worst_delta < RSS_TARGET_MB,
    }


def report_line(result: dict) -> list[str]:
    verdict = "PASS" if result["ok"] else "MISS"
    return [
        f"5. Chunked video upload of a {result['size_mb']} MB file to the sandbox in its own process, each upload in a fresh "
        f"subprocess (best of {result['rounds']} interleaved rounds):",
        f"   upload_video_file {result['ours_s']:.2f} s ({result['ours_mb_s']:.0f} MB/s, {result['chunks']} chunks, "
        f"{result['requests']} requests) · plain aiohttp POSTs of the same chunks {result['plain_s']:.2f} s ({result['plain_mb_s']:.0f} MB/s) · "
        f"throughput {result['ratio']:.2f}× plain aiohttp",
        f"   peak RSS delta: upload_video_file {result['ours_delta_mb']:.1f} MB · plain aiohttp {result['plain_delta_mb']:.1f} MB "
        f"(target {result['target']}) {verdict}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", choices=("ours", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--account", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        work = child_ours if options.child == "ours" else child_plain
        print(
            json.dumps(
                asyncio.run(
                    work(options.url, json.loads(os.environ["ADMONSTER_BENCH_GRANT"]), options.account, options.file)
                )
            )
        )
        return 0
    result = asyncio.run(bench_upload(options.size_mb, options.rounds))
    print("\n".join(report_line(result)))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
