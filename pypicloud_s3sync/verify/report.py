"""What a run found: per pair and direction the lags, per region its own sync's, the
first broken link, what the purges removed, and what verify itself cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cleanup import Removed
    from .diagnose import BrokenLink

#: Exit status when a link is broken: the path differs from what it should be, as
#: ``status`` exits on drift.
EXIT_BROKEN = 3

#: The lags measured for each pair, in the order the canary meets them.
PAIR_LAGS = ("replication", "sync", "delete_replication", "delete_sync")
OWN_LAGS = ("sync", "delete_sync")


@dataclass
class Lags:
    """Seconds from the upload (or the delete) in ``source`` until each step was seen
    in ``destination``; None where it was not (yet) seen.  ``source == destination``
    is the region's own sync."""

    source: str
    destination: str
    seconds: dict[str, float | None] = field(default_factory=dict)

    @property
    def own(self) -> bool:
        return self.source == self.destination

    def to_json(self) -> dict[str, Any]:
        names = OWN_LAGS if self.own else PAIR_LAGS
        return {"source": self.source, "destination": self.destination,
                **{f"{name}_lag": _round(self.seconds.get(name)) for name in names}}

    def describe(self) -> str:
        names = OWN_LAGS if self.own else PAIR_LAGS
        parts = [f"{name.replace('_', ' ')} {_seconds(self.seconds.get(name))}"
                 for name in names]
        where = (f"{self.source} (own cache)" if self.own
                 else f"{self.source} -> {self.destination}")
        return f"  {where}: {', '.join(parts)}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


@dataclass
class VerifyReport:
    """The run's answer; ``to_json`` is what ``--json`` prints and the admin API
    answers with."""

    sites: list[dict[str, str]]
    canary: str
    pairs: list[Lags] = field(default_factory=list)
    own: list[Lags] = field(default_factory=list)
    broken: BrokenLink | None = None
    leftovers: list[Removed] = field(default_factory=list)
    removed: list[Removed] = field(default_factory=list)
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.broken is None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else EXIT_BROKEN

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "canary": self.canary, "sites": self.sites,
                "pairs": [lags.to_json() for lags in self.pairs],
                "own": [lags.to_json() for lags in self.own],
                "broken": self.broken.to_json() if self.broken else None,
                "leftovers": [item.to_json() for item in self.leftovers],
                "removed": [item.to_json() for item in self.removed],
                **self.cost}

    def describe(self) -> str:
        lines = [f"verify: canary {self.canary} through {len(self.sites)} regions"]
        if self.leftovers:
            lines.append(f"removed {len(self.leftovers)} canary leftover(s) of an "
                         "interrupted run first:")
            lines += [f"  {item.what} {item.name} in {item.where}" for item in self.leftovers]
        lines += [lags.describe() for lags in self.pairs + self.own]
        overhead = self.cost.get("overhead", {})
        if overhead:
            lines.append(f"verify's own cost: {overhead['calls']} AWS calls and "
                         f"{overhead['seconds']:.2f} s beyond the waits")
        lines.append(self.broken.describe() if self.broken else
                     "ok: every region's uploads and deletes reached every other region's "
                     "cache; no canary is left")
        return "\n".join(lines)
