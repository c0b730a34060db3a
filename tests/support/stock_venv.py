"""A virtualenv as a reader makes it (``python3.11 -m venv``, its own old pip and
setuptools) with this checkout's wheel installed and pypicloud beside it, offline.

The test environment already holds pypicloud, moto, waitress and their dependencies at
the locked versions; what a reader's ``pip install`` lines would add is taken from
there instead of an index.  A ``.pth`` path entry (as tests/cli/test_dist.py uses) is not
enough here: the bundle builder reads the distributions of the venv's own
site-packages (their RECORDs), as it must on a real server, so each missing entry of
the test environment's site-packages is linked into it instead, and the console
scripts those distributions declare are written as pip writes them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: The interpreter the recipe's reader uses, and whose venv module installs pip 23.2.1
#: and setuptools 65.5.0 (3.11.7).
PYTHON = "python3.11"


def build_wheel(out: Path) -> Path:
    """``make dist``'s wheel, built from a copy of the tree (no build dirs in the checkout)."""
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "__pycache__", "*.egg-info", "build", "dist", "_build", ".*cache",
        ".hypothesis", "*.zip"))
    subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir",
                    str(out), str(src)], check=True, capture_output=True, timeout=180)
    return next(out.glob("pypicloud_s3sync-*.whl"))


def _project(entry: str) -> str:
    return re.sub(r"[-_.]+", "-", entry.split("-")[0]).lower()


def _link_test_packages(site: Path) -> None:
    """Everything of the test environment the venv lacks; its own pip, setuptools and
    our wheel stay, and no ``.pth`` file runs (the editable install is one)."""
    source = Path(sysconfig.get_paths()["purelib"])
    present = {entry.name for entry in site.iterdir()}
    projects = {_project(entry.name) for entry in site.iterdir()
                if entry.suffix in (".dist-info", ".egg-info")}
    for entry in source.iterdir():
        if (entry.name in present or entry.suffix == ".pth" or entry.name == "__pycache__"
                or entry.name.startswith("__editable__")
                or (entry.suffix in (".dist-info", ".egg-info")
                    and _project(entry.name) in projects)):
            continue
        (site / entry.name).symlink_to(entry)


def _write_script(bindir: Path, name: str, value: str) -> None:
    module, _, attr = value.partition(":")
    script = bindir / name
    script.write_text(
        f"#!{bindir / 'python'}\nimport sys\nfrom {module} import {attr.split('.')[0]}\n"
        f"if __name__ == '__main__':\n    sys.exit({attr}())\n")
    script.chmod(0o755)


def make_stock_venv(venv: Path, wheel: Path, scripts: tuple[str, ...]) -> Path:
    """The venv, with the wheel installed by its own pip (no index, no dependencies) and
    ``scripts`` (console scripts of the test environment's distributions) in its bin."""
    subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=120)
    site = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    _link_test_packages(site)
    declared = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    for name in scripts:
        _write_script(venv / "bin", name, declared[name])
    return venv
