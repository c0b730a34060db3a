"""The install route the docs give works: ``make dist``'s wheel goes into a fresh
virtualenv next to pypicloud, and every console script it declares starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ("ppc-s3sync", "ppc-create-s3-sync", "ppc-delete-s3-sync",
           "ppc-build-lambda-bundle")


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What ``make dist`` runs (``python -m build``: an sdist, then the wheel built from
    it), on a copy of the tree so that the checkout gets no build directories."""
    src = tmp_path_factory.mktemp("src") / "pypicloud-s3sync"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "__pycache__", "*.egg-info", "build", "dist", "_build", ".*cache",
        ".hypothesis", "*.zip"))
    out = tmp_path_factory.mktemp("dist")
    # No isolation: the test environment already has setuptools and wheel, and CI may not
    # reach an index from here.
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out),
                    str(src)], check=True, capture_output=True, timeout=120)
    return out


def test_make_dist_builds_a_wheel_and_an_sdist_with_every_module_and_template(dist: Path) -> None:
    wheels = list(dist.glob("pypicloud_s3sync-*-py3-none-any.whl"))
    assert len(wheels) == 1 and len(list(dist.glob("pypicloud_s3sync-*.tar.gz"))) == 1
    source = {path.relative_to(ROOT).as_posix()
              for pattern in ("*.py", "*.html")
              for path in (ROOT / "pypicloud_s3sync").rglob(pattern)}
    with zipfile.ZipFile(wheels[0]) as wheel:
        assert source <= set(wheel.namelist())


def test_the_wheel_installs_next_to_pypicloud_and_its_scripts_run(
        dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "server-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=60)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # pypicloud and its dependencies as the server's virtualenv has them: the test
    # environment's site-packages, as a plain path entry (its .pth files, among them
    # this checkout's editable install, are not run).
    Path(site, "pypicloud-server.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(dist.glob("*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install",
                    "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*argv: str) -> str:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60,
                              cwd=tmp_path)  # not the checkout, which -c would import
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = run(str(python), "-c", "import pypicloud_s3sync; print(pypicloud_s3sync.__file__)")
    assert where.startswith(site)
    version = wheel.name.split("-")[1]
    assert run(str(venv / "bin" / "ppc-s3sync"), "--version") == f"ppc-s3sync {version}\n"
    for script in SCRIPTS:
        assert run(str(venv / "bin" / script), "--help").startswith(f"usage: {script}")
    # docs/cli.rst's check of which package's scripts are in bin, run as written there.
    check = "grep '^from ' \"$(command -v ppc-create-s3-sync)\" "
    assert check in (ROOT / "docs" / "cli.rst").read_text()
    found = run("sh", "-c", check.replace("ppc-create-s3-sync", str(venv / "bin" /
                                                                   "ppc-create-s3-sync")))
    assert found == "from pypicloud_s3sync.cli import create_main\n"
