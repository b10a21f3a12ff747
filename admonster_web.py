"""The web console of `admonster serve`: one static page (HTML, CSS, a little JavaScript, no build step, nothing
fetched from outside) that talks to the same `/v1/` API as every other client.

The page is served at `/` and `/console`; its files at `/console/static/<name>` (its icon also at `/favicon.ico`).
It holds no secrets and does no work on the server: the person pastes their workspace API key once (kept in the
tab's sessionStorage) and the page sends it as `Authorization: Bearer <key>` to `POST /v1/tools/facebook` (connect,
token health, selections, audit log, confirmations, campaigns and insights) and `POST /v1/chat`, reads the thread's
history from `GET /v1/threads/{id}` (the thread id kept in localStorage) and the workspace's name from `GET /v1/me`.
Files that ops wrote (charts, previews, exports) come back as `file_urls`; the page fetches them with the same
header and shows pictures inline through `blob:` URLs (hence `img-src blob:`), other files as download links.

The files live in the folder `admonster_web_static/` beside this module (found there in a checkout and in an
editable install). A regular wheel installs that folder as data files under `sys.prefix` (pyproject's
`[tool.setuptools.data-files]`), which is the second place looked at.
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web

STATIC_FOLDER = "admonster_web_static"
# Only these files are served: a request can never name anything else on disk.
STATIC_FILES = {
    "console.js": "text/javascript",
    "console.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
FAVICON = "favicon.svg"  # also answered at /favicon.ico, where browsers look when a page names no icon
INDEX_FILE = "index.html"
STATIC_PREFIX = "/console/static/"

# The page loads only its own files and talks only to its own origin; nothing may frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def static_dir() -> Path:
    """Where the console's files are: beside this module, else where a wheel's data files went."""
    candidates = [Path(__file__).resolve().parent / STATIC_FOLDER, Path(sys.prefix) / STATIC_FOLDER]
    for candidate in candidates:
        if (candidate / INDEX_FILE).is_file():
            return candidate
    return candidates[0]


def _file(name: str, content_type: str) -> web.Response:
    path = static_dir() / name
    try:
        body = path.read_bytes()
    except OSError:
        raise web.HTTPNotFound(text=f"The console file {name} is missing from {path.parent}") from None
    return web.Response(body=body, content_type=content_type, charset="utf-8", headers=SECURITY_HEADERS)


async def index(request: web.Request) -> web.Response:
    return _file(INDEX_FILE, "text/html")


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        raise web.HTTPNotFound(text="No such console file")
    return _file(name, content_type)


async def favicon(request: web.Request) -> web.Response:
    return _file(FAVICON, STATIC_FILES[FAVICON])


def add_routes(app: web.Application) -> None:
    """Mount the console on an `admonster_server.create_app` application."""
    app.router.add_get("/", index)
    app.router.add_get("/console", index)
    app.router.add_get(STATIC_PREFIX + "{name}", static)
    app.router.add_get("/favicon.ico", favicon)
