"""The sandbox clock: real time plus an adjustable offset, or frozen at a moment that moves only when told (drives
delivery days, token expiry and usage decay)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    def __init__(self, offset: float = 0.0, frozen_at: float | None = None) -> None:
        self.offset = float(offset)
        self.frozen_at = None if frozen_at is None else float(frozen_at)

    @property
    def frozen(self) -> bool:
        return self.frozen_at is not None

    def now(self) -> float:
        return self.frozen_at if self.frozen_at is not None else time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if self.frozen_at is not None:
            self.frozen_at += seconds
        else:
            self.offset += seconds

    def set(self, epoch: float) -> None:
        if self.frozen_at is not None:
            self.frozen_at = float(epoch)
        else:
            self.offset = epoch - time.time()

    def freeze(self, frozen: bool) -> None:
        """Stop at the current moment, or run on from the moment it was stopped at."""
        if frozen and self.frozen_at is None:
            self.frozen_at = self.now()
        elif not frozen and self.frozen_at is not None:
            self.offset, self.frozen_at = self.frozen_at - time.time(), None

    def snapshot(self) -> dict:
        now = self.now()
        return {"now": iso(now), "epoch": int(now), "frozen": self.frozen}


def iso(epoch: float) -> str:
    """Facebook's time format: 2026-11-22T10:00:00+0000."""
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def parse_time(value) -> float | None:
    """ISO-8601 (with offset, Z, or naive = UTC) or unix seconds; None when unparseable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if 0 <= value < 10**11 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        return parse_time(int(text)) if len(text) < 12 else None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
