"""A small Lambda Runtime API, for running a bundle under ``awslambdaric`` as Lambda does.

Lambda's runtime interface client (``awslambdaric``, what Lambda's Python images run)
imports the handler, then loops: GET the next invocation, call the handler, POST its
response or its error.  A failed import is POSTed as an init error.  This server speaks
those four calls of the 2018-06-01 API, one invocation at a time, and checks what the
client sends the way Lambda would take it: responses must be JSON and at most 6 MB,
errors JSON objects with ``errorType`` and ``errorMessage``.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PREFIX = "/2018-06-01/runtime"
#: Lambda's limit on a synchronous response.
MAX_RESPONSE = 6 * 1024 * 1024
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:pypicloud_s3_sync"


@dataclass
class Outcome:
    """What the client POSTed for one invocation (or for the init)."""

    kind: str  # "response", "error" or "init-error"
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class RuntimeApi:
    """The server; ``invoke(event)`` hands one event to the function and waits."""

    def __init__(self) -> None:
        self.pending: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.outcomes: dict[str, Outcome] = {}
        self.init_error: Outcome | None = None
        self.problems: list[str] = []  # things Lambda would have refused
        self.done = threading.Condition()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes = b"{}", headers: dict | None = None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404)
                request_id, body = api.pending.get()
                deadline = int((time.time() + 60) * 1000)
                trace = f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}"
                self._reply(200, body, {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                    "Lambda-Runtime-Trace-Id": trace,
                })

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items()}
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api._record(None, Outcome("init-error", api._error_body(raw), headers))
                    return self._reply(202)
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response",
                                                                                 "error"):
                    if parts[2] == "response":
                        if len(raw) > MAX_RESPONSE:
                            api.problems.append(f"response of {len(raw)} bytes is over 6 MB")
                            self._reply(413)
                            return
                        try:
                            body = json.loads(raw) if raw else None
                        except ValueError:
                            api.problems.append(f"response is not JSON: {raw[:200]!r}")
                            body = raw
                        outcome = Outcome("response", body, headers)
                    else:
                        outcome = Outcome("error", api._error_body(raw), headers)
                    api._record(parts[1], outcome)
                    return self._reply(202)
                self._reply(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def _error_body(self, raw: bytes) -> Any:
        try:
            body = json.loads(raw)
        except ValueError:
            self.problems.append(f"error body is not JSON: {raw[:200]!r}")
            return raw
        if not (isinstance(body, dict) and isinstance(body.get("errorType"), str)
                and isinstance(body.get("errorMessage"), str)):
            self.problems.append(f"error body lacks errorType/errorMessage: {body!r}")
        return body

    def _record(self, request_id: str | None, outcome: Outcome) -> None:
        with self.done:
            if request_id is None:
                self.init_error = outcome
            else:
                self.outcomes[request_id] = outcome
            self.done.notify_all()

    def invoke(self, event: Any, process: subprocess.Popen | None = None,
               timeout: float = 120) -> Outcome:
        """Queue ``event`` and wait for the function's response, error or init error."""
        request_id = str(uuid.uuid4())
        self.pending.put((request_id, json.dumps(event).encode()))
        return self.wait(request_id, process, timeout)

    def wait(self, request_id: str | None, process: subprocess.Popen | None = None,
             timeout: float = 120) -> Outcome:
        deadline = time.monotonic() + timeout
        with self.done:
            while True:
                if request_id is not None and request_id in self.outcomes:
                    return self.outcomes[request_id]
                if self.init_error is not None:
                    return self.init_error
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"the function exited ({process.returncode}) "
                                       "without answering")
                if time.monotonic() > deadline:
                    raise TimeoutError("the function did not answer in time")
                self.done.wait(0.2)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_function(api: RuntimeApi, python: str, task: Path, runtime_dir: Path,
                   env: dict[str, str], log: Path,
                   handler: str = "pypicloud_s3sync.handler.handle_event") -> subprocess.Popen:
    """``python -m awslambdaric HANDLER`` as Lambda starts it: the code in /var/task (here
    ``task``, also the working directory), the runtime's packages after it, nothing else
    (``-S``: no site-packages; ``-B``: the code directory is read-only on Lambda)."""
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
            "PYTHONPATH": f"{task}{os.pathsep}{runtime_dir}",
            "AWS_LAMBDA_RUNTIME_API": api.address, "LAMBDA_TASK_ROOT": str(task),
            "_HANDLER": handler, "AWS_LAMBDA_FUNCTION_NAME": "pypicloud_s3_sync",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/pypicloud_s3_sync",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local"}
    out = log.open("ab")
    try:
        return subprocess.Popen([python, "-S", "-B", "-m", "awslambdaric", handler],
                                env={**base, **env}, cwd=task, stdout=out,
                                stderr=subprocess.STDOUT)
    finally:
        out.close()


def stop_function(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(10)
