"""Everything one sandbox instance holds: the store, clock, config, usage, faults and stats."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from .clock import Clock
from .faults import Faults
from .store import Store
from .usage import TIERS, Usage


@dataclass
class Config:
    latency_ms: int = 0
    require_appsecret_proof: bool = True
    access_tier: str = "standard_access"
    video_chunk_bytes: int = 4 * 1024 * 1024  # chunked video uploads: bytes per transfer
    video_processing_seconds: int = 30  # simulated seconds from finish to ready

    def update(self, body: dict) -> None:
        if "latency_ms" in body:
            value = body["latency_ms"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 600000:
                raise ValueError("latency_ms must be a number of milliseconds in [0, 600000]")
            self.latency_ms = int(value)
        if "require_appsecret_proof" in body:
            if not isinstance(body["require_appsecret_proof"], bool):
                raise ValueError("require_appsecret_proof must be a boolean")
            self.require_appsecret_proof = body["require_appsecret_proof"]
        if "access_tier" in body:
            if body["access_tier"] not in TIERS:
                raise ValueError(f"access_tier must be one of {sorted(TIERS)}")
            self.access_tier = body["access_tier"]
        for name, low, high in (("video_chunk_bytes", 1, 60 * 1024 * 1024), ("video_processing_seconds", 0, 86400)):
            if name in body:
                value = body[name]
                if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                    raise ValueError(f"{name} must be an integer in [{low}, {high}]")
                setattr(self, name, value)

    def as_dict(self) -> dict:
        return asdict(self)


class Stats:
    def __init__(self) -> None:
        self.requests = 0
        self.by_route: Counter = Counter()
        self.forbidden: dict[str, Counter] = {}  # app id -> feature -> requests (legacy.py)

    def record(self, route: str) -> None:
        self.requests += 1
        self.by_route[route] += 1

    def forbid(self, features: list[str], app_id: str | None) -> None:
        self.forbidden.setdefault(app_id or "unknown", Counter()).update(features)

    def reset(self) -> None:
        self.requests = 0
        self.by_route.clear()
        self.forbidden.clear()

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "by_route": dict(self.by_route),
            "forbidden": {app: dict(counts) for app, counts in self.forbidden.items()},
        }


CLOCK_OFFSET_KEY = "clock:offset"
CLOCK_FROZEN_KEY = "clock:frozen_at"


class Sandbox:
    def __init__(self, db_path: str = ":memory:", clock_start: float | None = None) -> None:
        """``clock_start``: the epoch a new (empty) sandbox's clock starts at; a restart continues at its simulated time."""
        self.store = Store(db_path)
        from .delivery import before_change

        self.store.before_update.append(lambda stored, data, now: before_change(self, stored, data, now))
        self.clock = Clock(self.store.kv_get(CLOCK_OFFSET_KEY, 0.0) or 0.0, self.store.kv_get(CLOCK_FROZEN_KEY))
        if clock_start is not None and self.store.is_empty():
            self.move_clock(to=clock_start)
        self.config = Config()
        self.usage = Usage()
        self.faults = Faults()
        self.stats = Stats()

    def now(self) -> float:
        return self.clock.now()

    def move_clock(self, *, advance: float | None = None, to: float | None = None, frozen: bool | None = None) -> None:
        """Move (or freeze, or unfreeze) the clock and keep it with the state, so the objects and days simulated under
        it never end up in the future of a restarted sandbox."""
        if frozen is not None:
            self.clock.freeze(frozen)
        if advance is not None:
            self.clock.advance(advance)
        if to is not None:
            self.clock.set(to)
        self.keep_clock()

    def keep_clock(self) -> None:
        self.store.kv_set(CLOCK_OFFSET_KEY, self.clock.offset)
        self.store.kv_set(CLOCK_FROZEN_KEY, self.clock.frozen_at)

    def reset_runtime(self) -> None:
        self.usage.reset()
        self.faults.clear()
        self.stats.reset()
