"""Files that ops write (charts, previews, CSV and PDF exports), offered to the workspace that made them: over HTTP
(`GET /v1/files/…` on `admonster serve`) and as MCP resources (`admonster://files/…`)."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

FILES_PREFIX = "/v1/files/"

# Only these kinds are offered; anything else an op writes stays a local path. Images and PDF open in the browser,
# the rest download (an HTML preview never runs as a page of this origin).
FILE_TYPES = {
    ".png": ("image/png", "inline"),
    ".jpg": ("image/jpeg", "inline"),
    ".jpeg": ("image/jpeg", "inline"),
    ".pdf": ("application/pdf", "inline"),
    ".csv": ("text/csv", "attachment"),
    ".html": ("text/html", "attachment"),
}


@dataclass(frozen=True)
class SharedFile:
    workspace_id: Any
    path: Path
    name: str
    content_type: str
    disposition: str
    size: int
    mtime_ns: int
    expires_at: float


class FileShelf:
    """Files that op results named, each under an unguessable id for one workspace, for `ttl` seconds. A URL holds
    the id and the file's name, never a key or token; the route still asks for the workspace's API key. A file changed
    or removed since it was offered is not served.

    With a `store` the index is in the database (its offered_files table): any replica on that database serves a link
    another one handed out, provided the home (the files) is on a volume they share. Without one it is in memory (at
    most `limit` entries, the oldest dropped first): one process only."""

    def __init__(
        self, *, store: Any = None, ttl: float = 24 * 3600, limit: int = 2000, clock: Callable[[], float] = time.time
    ) -> None:
        self.store, self.ttl, self.limit, self.clock = store, ttl, limit, clock
        self._entries: OrderedDict[str, SharedFile] = OrderedDict()

    async def offer(self, workspace_id: Any, path: str, folder: Path) -> str | None:
        """The URL for one file an op wrote, or None when it is not a kind the server hands out, is gone, or is not in
        the workspace's own folder `folder` (a name relative to it, as remote callers get them, or a full path)."""
        shelved = await self.shelve(workspace_id, path, folder)
        return None if shelved is None else f"{FILES_PREFIX}{shelved[0]}/{_url_name(shelved[1].name)}"

    async def shelve(self, workspace_id: Any, path: str, folder: Path) -> tuple[str, SharedFile] | None:
        """(id, entry) for one file an op wrote (what `offer` puts in a URL; MCP makes it a resource), or None."""
        try:
            root = folder.resolve()
            resolved = (folder / path).resolve(strict=True)
            stat = resolved.stat()
        except (OSError, RuntimeError, ValueError):
            return None
        if not resolved.is_relative_to(root):
            return None
        kind = FILE_TYPES.get(resolved.suffix.lower())
        if kind is None or not resolved.is_file():
            return None
        file_id = secrets.token_urlsafe(24)
        now = self.clock()
        entry = SharedFile(
            workspace_id, resolved, resolved.name, kind[0], kind[1], stat.st_size, stat.st_mtime_ns, now + self.ttl
        )
        if self.store is not None:
            await self.store.offer_file(
                file_id=file_id,
                workspace_id=workspace_id,
                relative_path=resolved.relative_to(root).as_posix(),
                name=entry.name,
                content_type=entry.content_type,
                disposition=entry.disposition,
                size=entry.size,
                mtime_ns=entry.mtime_ns,
                offered_at=_utc(now),
                expires_at=_utc(entry.expires_at),
                keep=self.limit,
            )
            return file_id, entry
        self._expire()
        self._entries[file_id] = entry
        while len(self._entries) > self.limit:
            self._entries.popitem(last=False)
        return file_id, entry

    async def urls(self, workspace_id: Any, paths: list[str] | None, folder: Path) -> list[str | None]:
        """One entry per path, in order (None where a path is not offered)."""
        return [await self.offer(workspace_id, path, folder) for path in paths or []]

    async def find(self, workspace_id: Any, file_id: str, name: str, folder: Path) -> SharedFile | None:
        """The workspace's offered file `file_id` named `name`, unchanged since it was offered; else None."""
        if self.store is not None:
            row = await self.store.offered_file(workspace_id, file_id, _utc(self.clock()))
            entry = None if row is None else _entry(row, folder)
            if entry is not None and not entry.path.resolve().is_relative_to(folder.resolve()):
                return None
        else:
            self._expire()
            entry = self._entries.get(file_id)
        if entry is None or entry.workspace_id != workspace_id or name not in (entry.name, _url_name(entry.name)):
            return None
        try:
            stat = entry.path.stat()
        except OSError:
            return None
        if not entry.path.is_file() or (stat.st_size, stat.st_mtime_ns) != (entry.size, entry.mtime_ns):
            return None
        return entry

    async def shelved(self, workspace_id: Any, folder: Path) -> list[tuple[str, SharedFile]]:
        """The workspace's files still on offer, newest first."""
        if self.store is not None:
            rows = await self.store.offered_files_of(workspace_id, _utc(self.clock()))
            return [(row.file_id, _entry(row, folder)) for row in rows]
        self._expire()
        return [(k, v) for k, v in reversed(self._entries.items()) if v.workspace_id == workspace_id]

    def _expire(self) -> None:
        now = self.clock()
        for file_id in [k for k, v in self._entries.items() if v.expires_at <= now]:
            del self._entries[file_id]


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def _entry(row: Any, folder: Path) -> SharedFile:
    """A stored offer as this replica sees it: the path under its own mount of the workspace's folder."""
    return SharedFile(
        row.workspace_id,
        folder / row.relative_path,
        row.name,
        row.content_type,
        row.disposition,
        row.size,
        row.mtime_ns,
        row.expires_at.timestamp(),
    )


def _url_name(name: str) -> str:
    return quote(name, safe="")
