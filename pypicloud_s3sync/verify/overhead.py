"""What verify costs beyond the waits: AWS calls (counted on botocore's event hooks of
every client the run makes) and seconds outside the polls."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Meter:
    """Calls and seconds, split into the waits and the rest (the overhead)."""

    started: float = field(default_factory=time.perf_counter)
    calls: int = 0
    wait_calls: int = 0
    wait_seconds: float = 0.0
    cache_reads: int = 0
    waiting: bool = False
    operations: dict[str, int] = field(default_factory=dict)

    def watch(self, client: Any) -> Any:
        """Count every call ``client`` makes; returns it."""
        client.meta.events.register("before-call.*.*", self._count)
        return client

    def _count(self, model: Any, **_: Any) -> None:
        if self.waiting:
            self.wait_calls += 1
            return
        self.calls += 1
        self.operations[model.name] = self.operations.get(model.name, 0) + 1

    @contextlib.contextmanager
    def wait(self) -> Iterator[None]:
        """Inside: calls and seconds are the waits', not the overhead."""
        self.waiting = True
        started = time.perf_counter()
        try:
            yield
        finally:
            self.wait_seconds += time.perf_counter() - started
            self.waiting = False

    def to_json(self) -> dict[str, Any]:
        total = time.perf_counter() - self.started
        return {"overhead": {"calls": self.calls,
                             "seconds": round(total - self.wait_seconds, 3),
                             "operations": dict(sorted(self.operations.items()))},
                "waits": {"calls": self.wait_calls, "seconds": round(self.wait_seconds, 3),
                          "cache_reads": self.cache_reads}}
