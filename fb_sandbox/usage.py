"""Usage headers and throttling: ad-account score, business use case (ads_management) quota, app usage."""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, field

from .errors import GraphError

WINDOW = 300.0  # seconds over which the ad-account score decays
HOUR = 3600.0
TIERS = {  # tier -> (ad-account score cap, block seconds, ads_management calls per hour)
    "development_access": (60, 300.0, 300),
    "standard_access": (9000, 60.0, 100000),
}
APP_CALLS_PER_HOUR = 200000


def _dump(value) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass
class AccountUsage:
    events: deque = field(default_factory=deque)  # (time, cost) in the last WINDOW
    calls: deque = field(default_factory=deque)  # times of calls in the last HOUR
    blocked_until: float = 0.0
    buc_blocked_until: float = 0.0

    def prune(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - WINDOW:
            self.events.popleft()
        while self.calls and self.calls[0] <= now - HOUR:
            self.calls.popleft()

    def score(self) -> float:
        return sum(cost for _, cost in self.events)


class Usage:
    def __init__(self) -> None:
        self.accounts: dict[str, AccountUsage] = {}
        self.app_calls: deque = deque()

    def reset(self) -> None:
        self.accounts.clear()
        self.app_calls.clear()

    def _account(self, digits: str, now: float) -> AccountUsage:
        acc = self.accounts.setdefault(digits, AccountUsage())
        acc.prune(now)
        return acc

    def charge(self, digits: str | None, *, write: bool, now: float, tier: str) -> None:
        """Count one call; raise the throttle error when the account is (or would go) over its limit."""
        self.app_calls.append(now)
        while self.app_calls and self.app_calls[0] <= now - HOUR:
            self.app_calls.popleft()
        if not digits:
            return
        cap, block, hourly = TIERS[tier]
        acc = self._account(digits, now)
        if acc.blocked_until > now or acc.buc_blocked_until > now:
            raise self._throttle_error(digits, acc, now, tier)
        cost = 3 if write else 1
        if acc.score() + cost > cap:
            acc.blocked_until = now + block
            raise self._throttle_error(digits, acc, now, tier)
        if len(acc.calls) + 1 > hourly:
            acc.buc_blocked_until = now + block
            raise self._throttle_error(digits, acc, now, tier)
        acc.events.append((now, cost))
        acc.calls.append(now)

    def _throttle_error(self, digits: str, acc: AccountUsage, now: float, tier: str) -> GraphError:
        headers = self.headers(digits, now=now, tier=tier)
        if acc.buc_blocked_until > now and acc.blocked_until <= now:
            return GraphError(
                "(#80004) There have been too many calls to this ad-account. Wait a bit and try again. For more info, "
                "please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting#ads-management.",
                80004,
                subcode=2446079,
                headers=headers,
            )
        return GraphError("(#17) User request limit reached", 17, subcode=2446079, is_transient=True, headers=headers)

    def regain_seconds(self, digits: str, now: float) -> float:
        acc = self._account(digits, now)
        return max(0.0, acc.blocked_until - now, acc.buc_blocked_until - now)

    def headers(
        self, digits: str | None, *, now: float, tier: str, regain_minutes: int | None = None, insights: bool = False
    ) -> dict[str, str]:
        app_pct = min(100, round(len(self.app_calls) * 100 / APP_CALLS_PER_HOUR))
        out = {"X-App-Usage": _dump({"call_count": app_pct, "total_time": app_pct, "total_cputime": app_pct})}
        if digits:
            out.update(self._account_headers(digits, now, tier, regain_minutes))
        if insights:
            pct = float(json.loads(out.get("X-Ad-Account-Usage", '{"acc_id_util_pct":0}'))["acc_id_util_pct"])
            out["x-fb-ads-insights-throttle"] = _dump(
                {"app_id_util_pct": app_pct, "acc_id_util_pct": pct, "ads_api_access_tier": tier}
            )
        return out

    def _account_headers(self, digits: str, now: float, tier: str, regain_minutes: int | None) -> dict[str, str]:
        cap, _, hourly = TIERS[tier]
        acc = self._account(digits, now)
        blocked = max(acc.blocked_until, acc.buc_blocked_until) - now
        pct = 100.0 if acc.blocked_until > now else min(100.0, round(acc.score() * 100 / cap, 2))
        reset = (
            math.ceil(blocked) if blocked > 0 else (math.ceil(acc.events[-1][0] + WINDOW - now) if acc.events else 0)
        )
        calls_pct = 100 if acc.buc_blocked_until > now else min(100, round(len(acc.calls) * 100 / hourly))
        regain = regain_minutes if regain_minutes is not None else (math.ceil(blocked / 60) if blocked > 0 else 0)
        buc = {
            digits: [
                {
                    "type": "ads_management",
                    "call_count": max(calls_pct, 100 if regain else 0),
                    "total_cputime": calls_pct,
                    "total_time": calls_pct,
                    "estimated_time_to_regain_access": regain,
                    "ads_api_access_tier": tier,
                }
            ]
        }
        return {
            "X-Ad-Account-Usage": _dump(
                {"acc_id_util_pct": pct, "reset_time_duration": max(0, reset), "ads_api_access_tier": tier}
            ),
            "X-Business-Use-Case-Usage": _dump(buc),
        }
