"""AWS's runtime retirement dates: refused when AWS refuses, warned about before."""

from __future__ import annotations

import datetime

import pytest

from pypicloud_s3sync.bundle.runtimes import RUNTIMES, SCHEDULE, RuntimeRetired, check_runtime


def day(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


def test_every_supported_runtime_has_dates_in_order() -> None:
    for runtime in RUNTIMES:
        s = SCHEDULE[runtime]
        assert s.deprecation <= s.block_create <= s.block_update, runtime


def test_a_current_runtime_needs_no_word() -> None:
    assert check_runtime("python3.14", creating=True, on=day("2026-11-30")) is None


def test_warned_half_a_year_before_deprecation_with_newer_choices() -> None:
    warning = check_runtime("python3.11", creating=True, on=day("2027-02-01"))
    assert warning is not None
    assert "2027-06-30" in warning and "2027-07-31" in warning
    assert "python3.12, python3.13, python3.14" in warning


def test_deprecated_but_creatable_is_a_warning() -> None:
    warning = check_runtime("python3.11", creating=True, on=day("2027-07-01"))
    assert warning is not None and "deprecated since 2027-06-30" in warning


def test_creating_is_refused_after_the_create_block() -> None:
    with pytest.raises(RuntimeRetired, match=r"stopped creating functions with python3\.11 "
                                             r"on 2027-07-31.*python3\.12"):
        check_runtime("python3.11", creating=True, on=day("2027-08-01"))
    # An existing function can still be updated until the update block...
    warning = check_runtime("python3.11", creating=False, on=day("2027-08-01"))
    assert warning is not None and "until 2027-08-31" in warning
    # ...and not after.
    with pytest.raises(RuntimeRetired, match="updating functions that use python3.11 on "
                                             "2027-08-31"):
        check_runtime("python3.11", creating=False, on=day("2027-09-01"))


def test_newer_choices_leave_out_runtimes_that_are_blocked_too() -> None:
    with pytest.raises(RuntimeRetired) as info:
        check_runtime("python3.11", creating=True, on=day("2028-12-01"))
    assert str(info.value).endswith("choose one of python3.13, python3.14")


@pytest.mark.parametrize("command", ["create", "status", "export", "bundle"])
def test_the_help_that_names_the_default_runtime_says_it_may_ship_without_bytecode(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    # A machine without the newest Python builds a zip of sources only; the one place an
    # operator reads about the default must say what that costs.
    from pypicloud_s3sync import cli

    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    runtime = text[text.index("--runtime RUNTIME"):]
    assert RUNTIMES[-1] in runtime
    assert "bytecode is compiled only if this machine has that Python" in runtime
