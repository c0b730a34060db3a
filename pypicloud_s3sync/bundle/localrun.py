"""Run a built bundle on this machine the way AWS Lambda runs it.

Lambda starts a bare interpreter whose ``sys.path`` holds the unzipped bundle and the
runtime's own packages (boto3 and its dependencies), nothing from the machine that
built it.  Testing a bundle any other way hides the mistakes that matter: a module the
builder left out imports fine from the developer's site-packages.  So the interpreter
here is started with ``-I -S`` (no user site, no site-packages, no ``PYTHON*``
variables) and given exactly those two directories.

One :class:`LocalFunction` is one warm container: it bootstraps on the first event and
keeps its cache and clients for the next ones, as Lambda does between invocations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

#: The loop inside the isolated interpreter: one JSON event per stdin line, one JSON
#: answer per stdout line (the handler's own log lines go to stdout too, unprefixed).
_RUNNER = r"""
import json, sys
code, runtime, handler = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path[:0] = [code, runtime]
module_name, _, function_name = handler.rpartition(".")

class Context:
    function_name = "local"
    aws_request_id = "local"
    def get_remaining_time_in_millis(self):
        return 60000

reply = sys.stdout
function = getattr(__import__(module_name, fromlist=[function_name]), function_name)
for line in sys.stdin:
    try:
        answer = {"result": function(json.loads(line), Context())}
    except Exception as exc:
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    outside = sorted(
        name for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None)
        and not module.__file__.startswith((code, runtime, sys.base_prefix))
    )
    answer["outside"] = outside
    reply.write("\x1eRESULT " + json.dumps(answer, default=str) + "\n")
    reply.flush()
"""


def install_runtime_packages(target: Path, boto3_version: str | None = None, *,
                             python: str | None = None,
                             extra: tuple[str, ...] = ()) -> Path:
    """The runtime's own packages (boto3 and what it needs), installed like Lambda has them.

    ``python`` is the interpreter whose pip installs them (the target's: compiled
    packages such as ``awslambdaric``, Lambda's runtime interface client, are built per
    Python version); ``extra`` are more requirements for the same directory.  Reused
    when already there, since it is the same every time for the same versions.
    """
    if boto3_version is None:
        from importlib.metadata import version

        boto3_version = version("boto3")
    requirements = [f"boto3=={boto3_version}", *extra]
    marker = target / (".installed-" + "-".join(sorted(requirements)).replace("/", "_"))
    if not marker.exists():
        subprocess.run(
            [python or sys.executable, "-m", "pip", "install", "--quiet",
             "--disable-pip-version-check", "--target", str(target), *requirements],
            check=True, capture_output=True,
        )
        marker.touch()
    return target


def unpack(bundle: Path, directory: Path) -> Path:
    """Unzip a bundle as Lambda lays it out in ``/var/task``."""
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(directory)
    return directory


class LocalFunction:
    """A warm, isolated interpreter running a bundle's handler; ``invoke`` one event."""

    def __init__(self, code_dir: Path, runtime_dir: Path, env: dict[str, str], *,
                 handler: str = "pypicloud_s3sync.handler.handle_event",
                 python: str = sys.executable, log: Any = None) -> None:
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        self.process = subprocess.Popen(
            [python, "-I", "-S", "-B", "-c", _RUNNER, str(code_dir), str(runtime_dir),
             handler],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL,
            env={**base, **env}, cwd=code_dir, text=True,
        )
        self.logs: list[str] = []

    def invoke(self, event: Any) -> dict[str, Any]:
        """``{"result": ..., "outside": [...]}`` or ``{"error": ...}``; the handler's log
        lines are collected in ``self.logs``."""
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith("\x1eRESULT "):
                return json.loads(line.removeprefix("\x1eRESULT "))
            self.logs.append(line.rstrip("\n"))
        raise RuntimeError(f"the function's interpreter exited ({self.process.wait()})")

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> LocalFunction:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
