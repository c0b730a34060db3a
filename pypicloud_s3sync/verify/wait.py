"""Polling with a deadline: the waits are what verify measures, so they are timed
apart from everything else (see :mod:`.overhead`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

#: First pause between polls, and the longest: replication usually takes seconds, so
#: the first polls come quickly and later ones back off to spare the APIs.
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 2.0


@dataclass
class Deadline:
    """The one deadline the whole run shares (``--timeout``)."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    @property
    def left(self) -> float:
        return self.at - time.monotonic()


def poll(step: Callable[[], bool], deadline: Deadline, *,
         sleep: Callable[[float], None] = time.sleep,
         progress: Callable[[], None] | None = None) -> bool:
    """Call ``step`` until it answers True (done) or ``deadline`` passes (False).

    ``progress`` runs after every step that did not finish, at most once a second, for
    the front end's progress lines.
    """
    pause = FIRST_PAUSE
    shown = time.monotonic()
    while True:
        if step():
            return True
        left = deadline.left
        if left <= 0:
            return False
        if progress is not None and time.monotonic() - shown >= 1.0:
            progress()
            shown = time.monotonic()
        sleep(min(pause, left))
        pause = min(pause * 1.5, LONGEST_PAUSE)
