"""Type shell lines into one bash, as a reader types them into one terminal.

Exports, background jobs (``cmd &``, ``kill %1``) and ``$(...)`` behave as they do for
the reader because every line goes to the same bash; after each line bash prints a
marker with the line's exit status on both streams, so each line's own output can be
checked before the next one runs.  The bash leads a process group of its own: whatever
the lines left running is ended with it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class Step:
    """One line as typed, and what it did."""

    line: str
    status: int
    out: str
    err: str
    seconds: float


class Shell:
    """A bash reading lines from us; use as a context manager."""

    def __init__(self, cwd: Path, env: dict[str, str], timeout: float = 300) -> None:
        self.timeout = timeout
        self._marker = f"@@step-{uuid.uuid4().hex}"
        self._proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=cwd, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        self._out: queue.Queue[str | None] = queue.Queue()
        self._err: queue.Queue[str | None] = queue.Queue()
        for stream, lines in ((self._proc.stdout, self._out), (self._proc.stderr, self._err)):
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _until_marker(self, lines: queue.Queue[str | None]) -> tuple[str, str]:
        """(text before the marker, what follows it on the marker's line)."""
        text = []
        while True:
            line = lines.get(timeout=self.timeout)
            if line is None:
                raise RuntimeError("bash exited: " + "".join(text))
            if self._marker in line:
                before, _, after = line.partition(self._marker)
                text.append(before)
                return "".join(text), after.strip()
            text.append(line)

    def run(self, line: str) -> Step:
        import time

        assert self._proc.stdin is not None
        started = time.monotonic()
        self._proc.stdin.write(
            f"{line}\n__status=$?; printf '\\n{self._marker} %s\\n' \"$__status\"; "
            f"printf '\\n{self._marker}\\n' >&2\n")
        self._proc.stdin.flush()
        out, status = self._until_marker(self._out)
        err, _ = self._until_marker(self._err)
        # The marker starts on a line of its own: drop the newline put before it.
        return Step(line, int(status), out.removesuffix("\n"), err.removesuffix("\n"),
                    time.monotonic() - started)

    def __enter__(self) -> Shell:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
