"""``make mutate``: mutation testing of the code where a wrong answer loses or leaks data.

mutmut changes the product code one small step at a time (a condition inverted, an
argument dropped, a string altered) and runs the tests that cover the changed function;
a change no test notices is a hole in the tests, or a change that makes no difference
(an equivalent mutant, listed with its reason in ``tools/mutation/mutation_survivors.txt``).

Each module runs on its own, in ``build/mutation/<name>`` (a copy of the package and the
tests, so the work tree is never touched), against the fast tests that cover it, with
one worker: the whole run is long, and the machine is shared.  It is not part of
``make test``.  Usage::

    python tools/mutation/mutation.py              # every module
    python tools/mutation/mutation.py events sync  # some of them
    python tools/mutation/mutation.py --results    # the counts of the last runs, run nothing
    # the last run's survivors, against the tests now (all of them, or some):
    python tools/mutation/mutation.py --survivors sync
    python tools/mutation/mutation.py --survivors sync x_sync_key__mutmut_33
    # (named mutants in a checkout with no run yet: a new copy, just those mutants)
    # the reasons in results/<name>.json read again from mutation_survivors.txt:
    python tools/mutation/mutation.py --labels urlsecrets

It prints, and writes to ``build/mutation/scores.json``, the score per module: killed
mutants over all mutants (a mutant no test reaches counts as not killed).

A run that checked every mutant in its module's scope also writes
``tools/mutation/results/<name>.json`` (committed): the module, the scope, the commit and
date, how long it took, and the counts, each survivor with its label from
``mutation_survivors.txt``.  Only a complete run writes it: a run of some mutants
(``--survivors``) or one stopped part way leaves it as it was, so the file always says
what one whole run found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "build" / "mutation"
RESULTS = ROOT / "tools" / "mutation" / "results"
SURVIVORS = ROOT / "tools" / "mutation" / "mutation_survivors.txt"

#: The fast tests of each area: no bundle builds, no servers but the cache servers.
#: The handler's scenarios run on SQLite only here; the per-backend deletes of
#: ``clear_filename`` and the stale-connection retry keep their own backends.
HANDLER_TESTS = ["tests/function/test_handler.py", "tests/function/test_handler_faults.py",
                 "tests/function/test_handler_scenarios.py", "-m", "not slow", "-k",
                 "pooled or clear_filename or (sqlite and aws) "
                 "or not (mysql or postgresql or dynamo or redis or sqlite)"]
#: The per-backend deletes also against the tests that count their round trips (the
#: only ones that can tell the one-statement fast path from the read-then-delete behind
#: it) and the one that changes the row between the two, as another container would.
CLEAR_TESTS = [*HANDLER_TESTS[:-1], f"{HANDLER_TESTS[-1]} or one_delete_and_no_read "
               "or another_key_is_kept or another_container_changes"]


@dataclass(frozen=True)
class Target:
    """One module (or part of one) and the tests it is tried against."""

    path: str
    tests: tuple[str, ...]
    #: mutmut mutant-name patterns when only part of the module is in scope.
    only: tuple[str, ...] = ()


TARGETS: dict[str, Target] = {
    "events": Target("pypicloud_s3sync/function/events.py", ("tests/function/test_events.py",)),
    "sync": Target("pypicloud_s3sync/function/sync.py", tuple(HANDLER_TESTS),
                   only=tuple(f"*sync.x_{f}__*" for f in (
                       "is_package_key", "head_object", "package_from_state", "committing",
                       "save_package", "clear_filename", "_same_state", "_make_cache_agree",
                       "sync_key"))),
    # The per-backend deletes behind clear_filename: each is a fast path in front of a
    # slower one that gives the same answer, so many survivors here only cost round trips.
    "sync-clear": Target("pypicloud_s3sync/function/sync.py", tuple(CLEAR_TESTS),
                         only=("*sync.x__clear_*", "*sync.x__path_checked_delete__*")),
    "handler": Target("pypicloud_s3sync/function/handler.py", tuple(HANDLER_TESTS),
                      only=("*handler.xǁRuntimeǁhandle__*", "*handler.xǁRuntimeǁapply__*",
                            "*handler.x_read_settings__*", "*handler.x__stale_connection__*",
                            "*handler.x__verify_after__*", "*handler.x_runtime__*")),
    "notifications": Target("pypicloud_s3sync/provision/notifications.py",
                            ("tests/provision/test_notifications.py",)),
    # The deploy tests build a deployment with create first (seconds per test); these
    # set up what create leaves by hand and plan delete against it.
    "teardown": Target("pypicloud_s3sync/provision/planner.py",
                       ("tests/provision/test_teardown.py",),
                       only=("*planner.xǁPlannerǁteardown__*",)),
    "security": Target("pypicloud_s3sync/admin/security.py",
                       ("tests/admin/test_admin.py", "tests/admin/test_views.py", "-k",
                        "test_admin or cross_site or origin or bad_bodies or other_methods "
                        "or only_admins"),
                       only=("*security.x_secret_values__*", "*security.x_scrub__*",
                             "*security.x_normalise_origin__*",
                             "*security.x__host_without_default_port__*",
                             "*security.x_check_same_origin__*",
                             "*security.x_read_json_body__*")),
    # One parser for every output that must not show a password: the withhold check,
    # plans, CLI lines, the admin API's scrubbing, the function's log lines.  Against
    # the exact text of each form; test_url_secrets.py, which drives those outputs
    # through create and the admin app, took 35 s a mutant (its set-up is per run).
    "urlsecrets": Target("pypicloud_s3sync/urlsecrets.py",
                         ("tests/shared/test_url_secret_forms.py",)),
    # The database URL from Secrets Manager or SSM: a wrong one leaks the password into
    # a URL the function logs, or loses the cache to a refused login after rotation.
    # Against each shape of value pinned exactly; test_db_secret.py and its rotation
    # tests (a real Redis, PostgreSQL or MariaDB user per test, create's plan) are the
    # end-to-end proof, at half a minute a mutant.
    "dbsecret": Target("pypicloud_s3sync/function/dbsecret.py",
                       ("tests/function/test_db_secret_values.py",)),
    # The bulk removals: which cached filenames are planned "gone", the HEAD that must
    # confirm each, what is then cleared or kept, and the missing bucket that must stop
    # the run instead of looking empty (which would clear the whole cache).  Only these
    # functions: with the rest of the module (the report's text, the listing, the call
    # counter, the thread pool, the scheduled event: 586 more mutants) a run would take
    # hours here.  Against SQLite only: the removal decisions are the same on every
    # backend (each backend's delete is sync-clear's), and each test starts pypicloud.
    "reconcile": Target("pypicloud_s3sync/function/reconcile.py",
                        ("tests/function/test_reconcile.py", "-m", "not slow", "-k",
                         "sqlite or not (mysql or postgresql or dynamo or redis)"),
                        only=tuple(f"*reconcile.x_{f}__*" for f in (
                            "_path_of", "_plan", "_expected_key", "_read_one",
                            "_repair_entry", "check_bucket"))),
}


def _setup_cfg(target: Target) -> str:
    tests = "\n    ".join(target.tests)
    return (
        "[mutmut]\n"
        "source_paths = pypicloud_s3sync\n"
        f"only_mutate = {target.path}\n"
        f"pytest_add_cli_args_test_selection =\n    {tests}\n"
        "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n"
    )


def run(name: str, target: Target) -> dict[str, object]:
    work = WORK / name
    commit = _commit()
    _prepare(work, target)
    started = time.monotonic()
    with open(work / "run.log", "wb") as log:
        subprocess.run([*_MUTMUT, "run", "--max-children", "1", *target.only], cwd=work,
                       env=_env(work), stdout=log, stderr=subprocess.STDOUT, check=True)
    result = summarize(name, target)
    write_record(name, target, result, commit, time.monotonic() - started)
    return result


def _commit() -> str:
    """The commit the copy is made from, marked when the package or tests differ from it:
    a count is only reproducible from a commit."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "pypicloud_s3sync", "tests", "pytest.ini")
    return git("rev-parse", "HEAD") + (" (with uncommitted changes)" if dirty else "")


def labels(name: str) -> dict[str, str]:
    """The reasons ``mutation_survivors.txt`` gives, by mutant, in module ``name``'s section."""
    found: dict[str, str] = {}
    section = None
    for line in SURVIVORS.read_text().splitlines():
        if line.startswith("## "):
            header = line[3:].split()
            if header and header[0] in TARGETS:  # else a header's second line
                section = header[0]
        elif section == name and line.strip() and not line.startswith("#"):
            mutant, _, reason = line.strip().partition(" ")
            found[mutant] = reason.strip()
    return found


def write_record(name: str, target: Target, result: dict[str, object], commit: str,
                 seconds: float) -> Path | None:
    """``results/<name>.json`` when every mutant in scope was checked; None otherwise."""
    counts = result["counts"]
    assert isinstance(counts, dict)
    if not result["total"] or set(counts) - _CHECKED:
        return None  # stopped part way (or nothing to mutate): not a complete run
    known = labels(name)
    survivors = result["not_killed"]
    assert isinstance(survivors, list)
    record = {
        "module": target.path,
        "scope": list(target.only) or "every function",
        "tests": list(target.tests),
        "commit": commit,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
        "minutes": round(seconds / 60, 1),
        "mutants": result["total"],
        "killed": counts.get("killed", 0),
        "timed_out": counts.get("timeout", 0),
        "survived": counts.get("survived", 0),
        "no_tests": counts.get("no tests", 0),  # no selected test ran the function
        "other": {k: v for k, v in counts.items()
                  if k not in ("killed", "timeout", "survived", "no tests")},
        "score": result["score"],
        # Every mutant not killed, with its reason from mutation_survivors.txt.
        "survivors": {m.rsplit(".", 1)[-1]: known.get(m.rsplit(".", 1)[-1], "unlabelled")
                      for m in survivors},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


#: mutmut's verdicts of a checked mutant; any other ("not checked", "check was
#: interrupted by user") means the run did not finish.
_CHECKED = {"killed", "survived", "timeout", "no tests", "suspicious", "segfault",
            "caught by type check", "skipped"}


def run_survivors(name: str, target: Target, only: tuple[str, ...] = ()) -> dict[str, object]:
    """Try the last run's surviving mutants again against the tests as they are now
    (new tests written for them); the verdicts of the killed ones stand, since tests
    are only added.  The test selection must be the one of that run: mutmut starts
    over when it changes.  ``only``: the survivors to try (name endings), so that the
    equivalent ones, which run every covering test, are not tried again."""
    work = WORK / name
    if not (work / "mutants").exists():
        if not only:
            return run(name, target)
        # No run here yet (a new checkout): make the copy and try just these.
        _prepare(work, target)
        with open(work / "run.log", "wb") as log:
            subprocess.run([*_MUTMUT, "run", "--max-children", "1",
                            *(f"*{m}" for m in only)], cwd=work, env=_env(work),
                           stdout=log, stderr=subprocess.STDOUT, check=True)
        return summarize(name, target)
    shutil.copytree(ROOT / "tests", work / "tests", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    survivors = summarize(name, target)["not_killed"]
    assert isinstance(survivors, list)
    if only:
        survivors = [m for m in survivors if m.endswith(only)]
    if survivors:
        with open(work / "run.log", "ab") as log:
            subprocess.run([*_MUTMUT, "run", "--max-children", "1", *survivors], cwd=work,
                           env=_env(work), stdout=log, stderr=subprocess.STDOUT, check=True)
    return summarize(name, target)


_MUTMUT = [sys.executable, "-m", "mutmut"]


def _env(work: Path) -> dict[str, str]:
    """The mutated copy must be what the tests import: no path to the real tree.  A
    temporary directory of its own keeps the admin endpoint's lock files apart from
    another test run's on the same machine (they would answer 409 busy)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    (work / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(work / "tmp")
    return env


def _prepare(work: Path, target: Target) -> None:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for part in ("pypicloud_s3sync", "tests"):
        shutil.copytree(ROOT / part, work / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(ROOT / "pytest.ini", work / "pytest.ini")
    (work / "setup.cfg").write_text(_setup_cfg(target))


def summarize(name: str, target: Target) -> dict[str, object]:
    """The counts of a run, also of one stopped part way ("not checked" then)."""
    listed = subprocess.run([*_MUTMUT, "results", "--all", "true"], cwd=WORK / name,
                            env=_env(WORK / name), capture_output=True, text=True,
                            check=True).stdout
    statuses: dict[str, str] = {}
    for line in listed.splitlines():
        match = re.match(r"\s*(\S+__mutmut_\d+): (.+)$", line)
        if match and (not target.only or _in_scope(match.group(1), target.only)):
            statuses[match.group(1)] = match.group(2).strip()
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    total = len(statuses)
    survivors = sorted(k for k, v in statuses.items() if v != "killed" and v != "timeout")
    return {"module": target.path, "total": total, "killed": killed,
            "score": round(100 * killed / total, 1) if total else None,
            "counts": counts, "not_killed": survivors}


def _in_scope(mutant: str, patterns: tuple[str, ...]) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(mutant, pattern) for pattern in patterns)


def relabel(name: str) -> None:
    """The survivors' reasons in ``results/<name>.json`` read again from
    ``mutation_survivors.txt`` (after labelling them); the counts stay the run's."""
    path = RESULTS / f"{name}.json"
    if path.exists():
        record = json.loads(path.read_text())
        known = labels(name)
        record["survivors"] = {m: known.get(m, "unlabelled") for m in record["survivors"]}
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str]) -> int:
    if "--labels" in argv:
        for name in [a for a in argv if a in TARGETS] or list(TARGETS):
            relabel(name)
        return 0
    only_results = "--results" in argv  # count what build/mutation/ holds, run nothing
    again = "--survivors" in argv
    mutants = tuple(a for a in argv if "__mutmut_" in a)  # with --survivors: which ones
    names = [a for a in argv if a not in ("--results", "--survivors", *mutants)] or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        print(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
        return 2
    WORK.mkdir(parents=True, exist_ok=True)
    scores_path = WORK / "scores.json"
    scores = json.loads(scores_path.read_text()) if scores_path.exists() else {}
    for name in names:
        print(f"== {name}: {TARGETS[name].path}", flush=True)
        if (only_results or (again and not mutants)) and not (WORK / name / "mutants").is_dir():
            print(f"   not run in this checkout yet: make mutate MODULES={name}", flush=True)
            continue
        if only_results:
            scores[name] = summarize(name, TARGETS[name])
        elif again:
            scores[name] = run_survivors(name, TARGETS[name], mutants)
        else:
            scores[name] = run(name, TARGETS[name])
        result = scores[name]
        print(f"   {result['killed']}/{result['total']} killed ({result['score']}%), "
              f"{result['counts']}", flush=True)
        scores_path.write_text(json.dumps(scores, indent=2, sort_keys=True))
    print(f"scores in {scores_path.relative_to(ROOT)}; survivors: "
          f"cd build/mutation/<name> && {sys.executable} -m mutmut show <mutant>")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
