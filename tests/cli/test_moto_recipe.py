"""docs/moto.rst, walked the way a reader walks it: its files saved as the page shows
them, then every line of its shell blocks typed into one bash, in a virtualenv made with
plain ``python3.11 -m venv`` (its pip 23.2.1 and setuptools 65.5, not upgraded) with the
built wheel installed.

The page is read here, so the page and the test cannot drift apart.  Three things differ
from a reader's run, and only these: the recipe's ``pip install`` lines are replaced by
the offline setup of :mod:`tests.support.stock_venv` (the same packages, at the test
environment's versions, instead of an index); moto's and pserve's ports (5000 and 6543
on the page) become free ports, as two runs at once on one machine need; and the
bundle builder caches into the test run's directory.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import textwrap
import time
from pathlib import Path

import boto3
import pytest

from ..support.shell_walk import Shell, Step
from ..support.stock_venv import PYTHON, build_wheel, make_stock_venv
from .test_quickstart import quickstart

DOC = Path(__file__).resolve().parents[2] / "docs" / "moto.rst"
PORTS = ("5000", "6543")
SCRIPTS = ("moto_server", "pserve")


def _blocks(text: str) -> list[tuple[str, dict[str, str], str]]:
    """Every ``code-block`` and ``literalinclude``: (directive and its argument, its
    options, its indented body)."""
    found = []
    for match in re.finditer(r"^\.\. (code-block|literalinclude):: *(\S+)\n((?:   :.*\n)*)"
                             r"((?:\n|    .*\n|   .*\n)*)", text, re.M):
        options = dict(re.findall(r"^   :([\w-]+): ?(.*)$", match.group(3), re.M))
        found.append((f"{match.group(1)} {match.group(2)}", options,
                      textwrap.dedent(match.group(4)).strip("\n") + "\n"))
    return found


def _included(argument: str, options: dict[str, str]) -> str:
    """A ``literalinclude`` as Sphinx renders it: the lines after the first one holding
    ``start-after``, up to the next one holding ``end-before``."""
    lines = (DOC.parent / argument).read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if options["start-after"] in line) + 1
    end = next(i for i in range(start, len(lines)) if options["end-before"] in lines[i])
    return "".join(lines[start:end])


def recipe() -> tuple[dict[str, str], list[str]]:
    """The files the page has the reader save (by caption) and its shell lines, in
    order; a line ending in a backslash continues on the next."""
    files, lines = {}, []
    for directive, options, body in _blocks(DOC.read_text(encoding="utf-8")):
        kind, argument = directive.split(" ", 1)
        if kind == "literalinclude":
            files[options["caption"]] = _included(argument, options)
        elif argument == "ini":
            files[options["caption"]] = body
        elif argument == "sh":
            lines.extend(body.replace("\\\n", " ").splitlines())
    return files, [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_the_recipe_is_read_from_the_page_and_its_ini_is_the_quickstarts() -> None:
    files, lines = recipe()
    ini, commands = quickstart()
    assert files["config.ini"] == ini
    assert set(files) == {"config.ini", "serve.ini"}
    assert "[server:main]" in files["serve.ini"] and "[server:main]" not in ini
    walked = [shlex.split(line) for line in lines if line.startswith("ppc-")]
    assert walked == [c for c in commands if c[0] != "ppc-build-lambda-bundle"]
    assert lines[0] == "pip install 'moto[server]' waitress"


def _free_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def _answers(port: str) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", int(port))) == 0


def _reader_env(tmp_path: Path, venv: Path, cache_dir: Path) -> dict[str, str]:
    """The reader's terminal with the venv activated: none of this run's AWS or pypicloud
    settings, no AWS profile."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "PPC_", "MOTO_")) and key not in (
               "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
               AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
               PPC_S3SYNC_CACHE_DIR=str(cache_dir))
    return env


#: What a reader is not prepared for on stderr: a traceback or a warning.  The commands'
#: progress lines (``[2/6] create function ...``) are theirs to word, so they are not
#: listed here; they are printed with the walk's timings for a human to read.
SURPRISES = re.compile(r"Traceback \(most recent call last\)|^\s*File \"|Warning\b|"
                       r"warnings\.warn|: error:", re.M)


def _unexpected_stderr(step: Step) -> list[str]:
    return [line for line in step.err.splitlines() if SURPRISES.search(line)]


@pytest.mark.slow
def test_the_moto_recipe_as_written(tmp_path: Path, builder_cache_dir: Path) -> None:
    if not __import__("shutil").which(PYTHON):
        pytest.skip(f"{PYTHON} is not on PATH: the recipe's reader makes the venv with it")
    pytest.importorskip("flywheel")
    started = time.monotonic()
    files, lines = recipe()
    ports = {port: _free_port() for port in PORTS}

    def ported(text: str) -> str:
        for port, free in ports.items():
            text = re.sub(rf"\b{port}\b", free, text)
        return text

    venv = make_stock_venv(tmp_path / "venv", build_wheel(tmp_path / "dist"), SCRIPTS)
    setup_seconds = time.monotonic() - started
    work = tmp_path / "reader"
    work.mkdir()
    for name, text in files.items():
        (work / name).write_text(ported(text))
    moto = f"http://127.0.0.1:{ports['5000']}"
    ini = dict(line.split(" = ", 1) for line in files["config.ini"].splitlines()
               if " = " in line)
    region, bucket = ini["storage.region_name"], ini["storage.bucket"]
    aws = {"region_name": region, "endpoint_url": moto, "aws_access_key_id": "testing",
           "aws_secret_access_key": "testing"}

    steps: list[Step] = []
    with Shell(work, _reader_env(tmp_path, venv, builder_cache_dir)) as shell:
        for line in lines:
            if line.startswith("pip install"):
                continue  # what make_stock_venv did
            step = shell.run(ported(line))
            steps.append(step)
            assert step.status == 0, step
            assert not _unexpected_stderr(step), step
            command = shlex.split(line, comments=True)
            if command[:1] == ["moto_server"] or command[:1] == ["kill"]:
                continue
            if command[:1] == ["for"]:
                port = next(free for port, free in ports.items() if port in line)
                assert _answers(port), (line, (work / "pserve.log").read_text()
                                        if (work / "pserve.log").exists() else "")
            lam = boto3.client("lambda", **aws)
            if command[:2] == ["ppc-create-s3-sync", "config.ini"]:
                if "--dry-run" in command:
                    assert step.out.rstrip().endswith("Dry run: nothing was changed."), step
                    assert lam.list_functions()["Functions"] == []
                else:
                    assert "Applied 6 changes" in step.out, step
                    environment = lam.get_function_configuration(
                        FunctionName="pypicloud_s3_sync")["Environment"]["Variables"]
                    shipped = json.loads(environment["PYPICLOUD_SETTINGS"])
                    assert not {"db.host", "db.port", "db.secure", "s3sync.endpoint_url",
                                "storage.endpoint_url"} & set(shipped), shipped
            if command[:2] in (["ppc-s3sync", "status"], ["ppc-s3sync", "reconcile"]):
                assert "in sync" in step.out, step
            if command[:1] == ["ppc-delete-s3-sync"]:
                assert "Applied" in step.out, step
                assert lam.list_functions()["Functions"] == []
                notification = boto3.client("s3", **aws).get_bucket_notification_configuration(
                    Bucket=bucket)
                assert not {"LambdaFunctionConfigurations", "EventBridgeConfiguration"} & set(
                    notification), notification
        assert steps[-1].line.startswith("kill")
        deadline = time.monotonic() + 10
        while any(_answers(port) for port in ports.values()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_answers(port) for port in ports.values()), "kill left a server running"
    # The servers' logs, where the page sends them: what a reader looks at when
    # something goes wrong, and where an error behind a 200 would show.
    for log in ("moto.log", "pserve.log"):
        text = (work / log).read_text()
        assert not SURPRISES.search(text), (log, text)
    print(f"\nsetup {setup_seconds:.1f} s; walk {sum(s.seconds for s in steps):.1f} s")
    print("pserve.log:", (work / "pserve.log").read_text().strip())
    for step in steps:
        print(f"{step.seconds:6.1f} s  exit {step.status}  {step.line[:90]}")
        for text in (step.out, step.err):
            if text.strip():
                print(textwrap.indent(text.rstrip(), "          | "))
