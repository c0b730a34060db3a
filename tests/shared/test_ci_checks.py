"""The checks CI makes on a test run, tried on a small run of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = textwrap.dedent('''
    import pytest

    def test_needs_an_extra():
        pytest.importorskip("no_such_extra_s3sync")

    def test_needs_an_interpreter():
        pytest.skip("no python3.99 interpreter on this machine (looked at this Python), "
                    "so its bundle cannot be run")

    def test_another_target():
        pytest.skip("no python3.100 interpreter on this machine")

    def test_hypothesis_profile():
        import os
        from hypothesis import settings
        assert settings.default.derandomize is (os.environ.get("EXPECT") == "ci")
''')


LAMBDA_SAMPLE = textwrap.dedent('''
    import pytest

    @pytest.mark.parametrize("runtime", ["python3.11", "python3.12"])
    def test_bundle(runtime):
        if runtime != "python3.11":
            pytest.skip(f"no {runtime} interpreter on this machine")
''')


def run(tmp_path: Path, lambda_tests: bool = False,
        **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    files = [tmp_path / "test_sample.py"]
    if lambda_tests:
        files.append(tmp_path / "test_bundle_lambda.py")
        files[-1].write_text(LAMBDA_SAMPLE)
    environ = {k: v for k, v in os.environ.items()
               if k not in ("PPC_S3SYNC_REQUIRE_SERVICES", "PPC_S3SYNC_HYPOTHESIS_PROFILE")}
    environ.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.support.ci_checks", "-p", "no:cacheprovider",
         "-c", str(tmp_path / "pytest.ini"), "-rA", *(str(p) for p in files)],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120)


def test_outside_ci_a_missing_extra_is_a_skip_with_its_reason(tmp_path: Path) -> None:
    proc = run(tmp_path, EXPECT="dev")
    assert proc.returncode == 0, proc.stdout
    assert "could not import 'no_such_extra_s3sync'" in proc.stdout
    assert "1 passed, 3 skipped" in proc.stdout
    assert ("Lambda targets NOT tested (no interpreter on this machine): "
            "python3.99, python3.100") in proc.stdout


@pytest.mark.parametrize("env", [{"PPC_S3SYNC_REQUIRE_SERVICES": "1"},
                                 {"PPC_S3SYNC_HYPOTHESIS_PROFILE": "ci"}],
                         ids=["require-services", "profile-variable"])
def test_in_ci_a_missing_extra_fails_and_hypothesis_is_derandomized(
        tmp_path: Path, env: dict[str, str]) -> None:
    proc = run(tmp_path, EXPECT="ci", **env)
    if "PPC_S3SYNC_REQUIRE_SERVICES" not in env:
        assert "1 passed, 3 skipped" in proc.stdout  # the profile alone fails nothing
        return
    assert proc.returncode == 1, proc.stdout
    assert "FAILED test_sample.py::test_needs_an_extra" in proc.stdout
    assert "no_such_extra_s3sync" in proc.stdout and "must not skip" in proc.stdout
    assert "1 failed, 1 passed, 2 skipped" in proc.stdout
    assert ("Lambda targets NOT tested (no interpreter on this machine): "
            "python3.99, python3.100") in proc.stdout


def test_with_the_lambda_tests_every_supported_runtime_they_did_not_run_is_named(
        tmp_path: Path) -> None:
    from pypicloud_s3sync.bundle.runtimes import RUNTIMES

    proc = run(tmp_path, lambda_tests=True, EXPECT="ci", PPC_S3SYNC_REQUIRE_SERVICES="1")
    assert "1 failed, 2 passed, 3 skipped" in proc.stdout  # the extra only
    named = sorted({*RUNTIMES, "python3.12", "python3.99", "python3.100"} - {"python3.11"},
                   key=lambda r: int(r.removeprefix("python3.")))
    assert ("Lambda targets NOT tested (no interpreter on this machine): "
            f"{', '.join(named)}") in proc.stdout
    assert "python3.14" in named
