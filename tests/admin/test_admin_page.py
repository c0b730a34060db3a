"""The sync page in a real browser: headless Chromium against pypicloud's real app.

pypicloud runs from an ini as a server does, over real HTTP (waitress in a thread), with
AWS behind a moto server and a prebuilt function zip. The browser logs in through
pypicloud's own login page and uses the page the way an operator would: read the
status, dry run, apply (held inside AWS so the progress can be seen), reconcile, and
delete through the confirmation. What is asserted is what the operator sees on the page
and what is then true in AWS and in pypicloud's /simple. A screenshot of each state goes
to the test's temporary directory.

Chromium is Debian's ``chromium`` (``.ci/run`` installs it), driven by Playwright's
Python client; Playwright's own browser downloads are never used (tests/support/browser.py,
and the ``browser`` and ``page`` fixtures in tests/admin/conftest.py).
"""

from __future__ import annotations

import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from ..support.aws_gate import Gate
from ..support.browser import SHOWS, log_in, readable_on_a_phone, serve, wait_for_operation
from ..support.pypicloud_app import ADMIN, USER, Pypicloud
from ..support.sqs_queues import make_queues

pytestmark = pytest.mark.slow

BUCKET = "packages"
PREFIX = "pkgs/"
FUNCTION = "pypicloud_s3_sync"


@pytest.fixture
def function_zip(tmp_path: Path) -> Path:
    """A zip the operator built beforehand (``s3sync.bundle``): moto stores it unrun."""
    path = tmp_path / "function.zip"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("pypicloud_s3sync/__init__.py", "")
    return path


@pytest.fixture
def aws(moto_server: str) -> Iterator[Callable[[str], Any]]:
    """``aws("lambda")``: a client of the moto server the pypicloud under test uses.

    Every moto server in a process shares one state; it is emptied before and after so
    that no test sees another's bucket or function.
    """
    import requests

    requests.post(f"{moto_server}/moto-api/reset", timeout=30).raise_for_status()
    yield lambda service: boto3.client(service, region_name="us-east-1",
                                       endpoint_url=moto_server)
    requests.post(f"{moto_server}/moto-api/reset", timeout=30).raise_for_status()


@pytest.fixture
def pypicloud(aws: Callable[[str], Any], moto_server: str,
              pypicloud_factory: Callable[..., Pypicloud], function_zip: Path) -> Pypicloud:
    """pypicloud with the plugin, its S3 and every s3sync AWS call on the moto server.

    ``s3sync.admin.wait`` is short so that a held apply answers 202 and the page polls.
    """
    server = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix=PREFIX, **{
        "storage.endpoint_url": moto_server,
        "s3sync.endpoint_url": moto_server,
        "s3sync.bundle": str(function_zip),
        "s3sync.admin.wait": "1",
    })
    server.upload("alpha", "1.0")
    return server


@pytest.fixture
def site(pypicloud: Pypicloud) -> Iterator[str]:
    with serve(pypicloud) as url:
        yield url


def functions(aws: Callable[[str], Any]) -> list[str]:
    return [f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]]


def test_an_admin_logs_in_plans_applies_reconciles_and_deletes_from_the_page(
        page: Any, site: str, pypicloud: Pypicloud, aws: Callable[[str], Any],
        pypicloud_factory: Callable[..., Pypicloud], moto_server: str, gate: Gate,
        tmp_path: Path) -> None:
    # A package uploaded through another region's pypicloud: in the bucket, not in our cache.
    elsewhere = pypicloud_factory(cache="sqlite", bucket=BUCKET, prefix=PREFIX, **{
        "storage.endpoint_url": moto_server,
        "db.url": f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"})
    elsewhere.upload("delta", "2.0", summary="uploaded in another region")
    assert pypicloud.simple("delta") == []

    # Anonymous: sent to pypicloud's login page, which brings the admin back home.
    page.goto(f"{site}/admin/s3sync")
    assert page.url == f"{site}/acct/login"
    page.wait_for_selector("input[placeholder=Username]")
    page.shot("login")
    log_in(page, site, ADMIN)
    page.goto(f"{site}/admin/s3sync")

    # The status: the target, every check failing (nothing deployed), the plan.
    banner = page.locator("#status-banner")
    banner.get_by_text("Drift:").wait_for()
    target = page.inner_text("#target")
    assert "packages" in target and PREFIX in target and "us-east-1" in target
    assert "sql" in target and FUNCTION in target
    checks = page.locator("#checks tbody tr[data-resource]")
    assert checks.count() >= 3
    assert page.locator("#checks tbody tr[data-resource] .mark.fail").count() == checks.count()
    assert "missing" in page.locator("#checks tr[data-resource=function]").inner_text()
    assert "changes:" in page.inner_text("#plan")
    assert "logged in as admin" in page.inner_text("header")
    assert page.is_hidden("#redrive")  # no --delivery sqs queues: nothing to redrive
    # The path beyond our resources, each check with its fix: no function yet.
    missing = page.locator("#path tr[data-check=function]")
    assert missing.locator(".mark.fail").count() == 1
    assert "does not exist" in missing.inner_text()
    assert "Apply does this: run 'ppc-create-s3-sync CONFIG'" in missing.inner_text()
    page.shot("status-drift")
    readable_on_a_phone(page, "status-drift")

    # Dry run: the plan as the operation's result, and nothing in AWS.
    page.click("#dry-run")
    wait_for_operation(page, "Provision (dry run)")
    assert "dry run: nothing was changed" in page.inner_text("#operation")
    assert page.locator("#operation ol.steps li").count() >= 3
    assert functions(aws) == []
    page.shot("dry-run")

    # A second admin tab, opened before the apply starts.
    other = page.context.new_page()
    other.goto(f"{site}/admin/s3sync")
    other.locator("#status-banner").get_by_text("Drift:").wait_for()

    # Apply, held inside its first AWS change: the page shows it running, with progress,
    # and offers no second action meanwhile.
    page.click("#apply")
    assert gate.reached.wait(30), "the apply never reached AWS"
    wait_for_operation(page, "Provision", "running")
    page.locator("#operation pre.progress").get_by_text("[1/").wait_for()
    assert page.is_disabled("#apply") and page.is_disabled("#reconcile")
    page.shot("apply-running")
    # The other tab's reconcile is refused (409), and that tab follows the running apply.
    other.click("#reconcile")
    other.locator("#notice").get_by_text("another s3sync operation is running").wait_for()
    wait_for_operation(other, "Provision", "running")
    assert other.is_disabled("#reconcile")
    other.close()
    gate.release.set()
    wait_for_operation(page, "Provision")
    banner.get_by_text("In sync").wait_for()
    assert "applied" in page.inner_text("#operation")
    assert page.locator("#checks tbody tr[data-resource] .mark.ok").count() == checks.count()
    assert functions(aws) == [FUNCTION]
    # The function now checks out; the bucket is not versioned, so nothing replicates
    # into it, and the page names the command that fixes that.
    page.locator("#path tr[data-check=function] .mark.ok").wait_for()
    versioning = page.locator("#path tr[data-check=versioning]")
    assert versioning.locator(".mark.warn").count() == 1
    assert f"put-bucket-versioning --bucket {BUCKET}" in versioning.inner_text()
    # ... which is no fix the Apply button makes, and the page says so.
    assert "You do this (Apply does not): aws s3api" in versioning.inner_text()
    page.shot("applied")
    readable_on_a_phone(page, "applied")

    # Reconcile: delta, uploaded elsewhere, is now served here too.
    page.click("#reconcile")
    wait_for_operation(page, "Reconcile")
    report = page.inner_text("#operation")
    assert "1 added" in report and "delta-2.0.tar.gz" in report
    assert pypicloud.simple("delta") == ["delta-2.0.tar.gz"]
    page.shot("reconciled")

    # Delete asks first, naming what goes; cancelling removes nothing.
    page.click("#delete")
    dialog = page.locator("#confirm-delete")
    dialog.wait_for(state="visible")
    assert FUNCTION in dialog.inner_text()
    assert dialog.locator("li").count() >= 3
    page.shot("delete-confirmation")
    page.click("#confirm-cancel")
    page.locator("#notice").get_by_text("Nothing was deleted").wait_for()
    assert functions(aws) == [FUNCTION]
    page.click("#delete")
    dialog.wait_for(state="visible")
    page.click("#confirm-ok")
    wait_for_operation(page, "Teardown")
    banner.get_by_text("Drift:").wait_for()
    assert functions(aws) == []
    assert pypicloud.simple("delta") == ["delta-2.0.tar.gz"]  # the cache keeps its packages
    page.shot("deleted")


def test_redrive_is_offered_for_a_dead_letter_queue_and_moves_its_messages_back(
        page: Any, site: str, aws: Callable[[str], Any]) -> None:
    """The queues as ``--delivery sqs`` makes them (names.py, the queue's RedrivePolicy);
    the button appears because the status's dry run of the redrive found them."""
    sqs = aws("sqs")
    url, dead = make_queues(sqs, FUNCTION)
    for n in range(3):
        sqs.send_message(QueueUrl=dead, MessageBody=f'{{"Records": [{{"n": {n}}}]}}')

    page.goto(f"{site}/acct/login")
    log_in(page, site, ADMIN)
    page.goto(f"{site}/admin/s3sync")
    page.locator("#redrive-count").get_by_text("3 messages in").wait_for()
    page.click("#redrive")
    wait_for_operation(page, "Redrive")
    assert "moved 3 messages" in page.inner_text("#operation")
    page.locator("#redrive-count").get_by_text("0 messages in").wait_for()
    page.shot("redriven")
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "3"


def test_a_user_who_is_not_an_admin_gets_403_and_no_page(page: Any, site: str,
                                                          aws: Callable[[str], Any]) -> None:
    page.goto(f"{site}/acct/login")
    log_in(page, site, USER)
    response = page.goto(f"{site}/admin/s3sync")
    assert response.status == 403
    assert "not a pypicloud admin" in page.inner_text("body")
    assert page.locator("button").count() == 0
    # The API behind the page says the same to the same session.
    api = page.request.post(f"{site}/admin/s3sync", data={"dry_run": True},
                            headers={"Origin": site})
    assert api.status == 403
    page.shot("not-an-admin")
    assert functions(aws) == []


#: Where the docs' screenshot of the page goes when it is retaken (see docs/admin-api.rst).
DOCS_SHOT = "PPC_S3SYNC_DOCS_SCREENSHOT"


def test_the_page_after_a_real_apply_shows_real_values_for_the_docs(
        page: Any, aws: Callable[[str], Any], moto_server: str,
        pypicloud_factory: Callable[..., Pypicloud]) -> None:
    """The state docs/admin-api.rst shows: a Redis cache, the zip the server builds itself
    (no stand-in), a versioned bucket replicating without delete markers, right after
    Apply.  ``PPC_S3SYNC_DOCS_SCREENSHOT=docs/images/sync-page.png`` also writes the
    screenshot there; without it the test still asserts what the picture would show."""
    s3 = aws("s3")
    server = pypicloud_factory(cache="redis", bucket=BUCKET, prefix=PREFIX, **{
        "storage.endpoint_url": moto_server, "s3sync.endpoint_url": moto_server})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    # S3 replicates only to a versioned bucket that exists.
    s3.create_bucket(Bucket="packages-eu-west-1",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket="packages-eu-west-1",
                             VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_replication(Bucket=BUCKET, ReplicationConfiguration={
        "Role": "arn:aws:iam::123456789012:role/packages-replication", "Rules": [{
            "ID": "to-eu-west-1", "Priority": 1, "Status": "Enabled",
            "Filter": {"Prefix": PREFIX}, "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {"Bucket": "arn:aws:s3:::packages-eu-west-1"}}]})
    with serve(server) as url:
        page.goto(f"{url}/admin/s3sync")
        log_in(page, url, ADMIN)
        page.goto(f"{url}/admin/s3sync")
        # The first status builds the function's zip: a real build, so allow it time.
        page.locator("#status-banner").get_by_text("Drift:").wait_for(timeout=5 * SHOWS)
        page.click("#apply")
        wait_for_operation(page, "Provision")
        page.locator("#status-banner").get_by_text("In sync").wait_for()
        page.locator("#path tr[data-check=function] .mark.ok").wait_for()
        text = page.inner_text("main")
        replication = page.inner_text("#path tr[data-check=replication]")
        shot = page.shot("docs")
        readable_on_a_phone(page, "docs")
    size = re.search(r"code (\d+\.\d) MiB", text)
    assert size and float(size[1]) > 0.5, size  # the real zip, not a stand-in
    assert "pytest" not in text and "/tmp/" not in text
    assert "redis://127.0.0.1:6379/" in text
    assert "without delete marker replication" in replication
    assert "You do this (Apply does not): set DeleteMarkerReplication" in replication
    target = os.environ.get(DOCS_SHOT)
    if target:
        shutil.copyfile(shot, target)
