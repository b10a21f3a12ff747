"""The Graph/Marketing API versions the sandbox serves, declared once (the sandbox never imports the product).

Source: "Marketing API version history" (Meta, lists v27.0):
https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/versions.md
(verified 2026-12-06; see /work/research/changelog-rules.md §1). A version is served from its release to its expiry;
on and after its expiry (on the sandbox clock) a call answers code 2635 as Meta does for an expired Marketing API
version ("Upcoming change in Marketing API version deprecation…", 2024-04-16,
https://developers.facebook.com/blog/post/2024/04/16/upcoming-change-in-marketing-api-version-deprecation). Meta
auto-upgrades an expired version's call when the endpoint did not change between versions; the sandbox always
refuses (simplification, documented in docs/sandbox.md). Versions before the table are long expired (2635); a
version after the newest does not exist: Graph reads the version segment as an unknown path (2500 "Unknown path
components", third-party observation: https://github.com/arsduo/koala/issues/611, unverified).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from .rules import rule

VERSION_RE = re.compile(r"v(\d+)\.(\d+)")
VERSIONS_SOURCE = (
    "https://developers.facebook.com/documentation/ads-commerce/marketing-api/marketing-api-changelog/versions.md"
)
# version -> (released, expires or None when Meta says TBD), UTC dates.
VERSIONS: dict[str, tuple[str, str | None]] = {
    "v22.0": ("2025-01-21", "2026-02-19"),
    "v23.0": ("2025-05-29", "2026-06-09"),
    "v24.0": ("2025-10-08", "2026-11-10"),
    "v25.0": ("2026-02-18", "2027-02-23"),
    "v26.0": ("2026-07-29", None),
    "v27.0": ("2026-11-04", None),
}
rule(
    "versions.served",
    "Versions are served from release to expiry on the sandbox clock (v22.0–v27.0 table)",
    source=VERSIONS_SOURCE,
    since="2026-11-04",
    verified=True,
    area="versions",
)
rule(
    "versions.unknown",
    "A version after the newest answers 2500 Unknown path components",
    source="https://github.com/arsduo/koala/issues/611 (third-party)",
    since="any",
    verified=False,
    area="versions",
)
NEWEST = max(VERSIONS, key=lambda v: int(VERSION_RE.fullmatch(v).group(1)))  # type: ignore[union-attr]
DEFAULT_VERSION = NEWEST  # an unversioned call gets the newest version (an app's default version is its newest)


def _epoch(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def version_state(version: str, now: float) -> str:
    """ "served", "expired" (2635) or "unknown" (no such version) for a vNN.N path segment at sandbox time ``now``."""
    match = VERSION_RE.fullmatch(version)
    if not match:
        return "unknown"
    if version not in VERSIONS:
        oldest = min(int(VERSION_RE.fullmatch(v).group(1)) for v in VERSIONS)  # type: ignore[union-attr]
        return "expired" if int(match.group(1)) < oldest else "unknown"
    expires = VERSIONS[version][1]
    return "expired" if expires is not None and now >= _epoch(expires) else "served"


def served_versions(now: float) -> list[str]:
    return [v for v in VERSIONS if version_state(v, now) == "served"]
