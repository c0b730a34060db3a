"""``--reserved-concurrency`` against the account's concurrency quota, checked at plan time.

"You can reserve concurrency for as many functions as you like, as long as you leave at
least 100 simultaneous executions unreserved for functions that aren't configured with a
per-function limit." (Lambda API Reference, PutFunctionConcurrency)

New accounts get a reduced "Concurrent executions" quota, so a cap that fits a default
account of 1000 is refused in theirs.  moto models the rule when
``MOTO_LAMBDA_CONCURRENCY_QUOTA`` is set; its missing GetAccountSettings is answered from
that same quota (tests/support/moto_gaps.py).
"""

from __future__ import annotations

import boto3
import pytest

from pypicloud_s3sync.cli import main
from pypicloud_s3sync.provision import deploy
from pypicloud_s3sync.provision.errors import DeployError

from ..support.deploy_helpers import (
    REGION,
    clients_for,
    create,
    function_names,
    make_config,
    write_zip,
)

FUNCTION = "pypicloud_s3_sync"


@pytest.fixture
def code(aws, tmp_path):
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="packages")
    return deploy.ZipBundle.from_path(write_zip(tmp_path / "function.zip"))


def test_a_cap_the_account_cannot_reserve_is_refused_before_anything_is_made(
        code, tmp_path, monkeypatch, capsys):
    """A new account's quota of 110 leaves 10 to reserve: 20 is refused with the numbers
    and the fixes, and nothing exists afterwards (no function without its notification
    that every re-run would stop at)."""
    monkeypatch.setenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", "110")
    config = make_config(tmp_path)
    with pytest.raises(DeployError) as refused:
        create(config, code, reserved_concurrency="20")
    message = str(refused.value)
    assert "--reserved-concurrency 20" in message
    assert "110 concurrent executions" in message
    assert "110 unreserved" in message
    assert "at least 100" in message
    assert "--reserved-concurrency 10 or less" in message
    assert "Service Quotas" in message and "L-B99A9384" in message
    assert function_names() == []
    assert boto3.client("s3", region_name=REGION).get_bucket_notification_configuration(
        Bucket="packages").get("LambdaFunctionConfigurations") is None

    # The command says so on one line and exits 2, also on a dry run.
    ini = str(tmp_path / "pypicloud.ini")
    for extra in ([], ["--dry-run"]):
        status = main(["create", ini, "--bundle", str(tmp_path / "function.zip"),
                       "--reserved-concurrency", "20", *extra])
        err = capsys.readouterr().err
        assert status == 2, err
        assert "leave 90 unreserved" in err
    assert function_names() == []
    # What does fit is made.
    create(config, code, reserved_concurrency="10")
    assert boto3.client("lambda", region_name=REGION).get_function_concurrency(
        FunctionName=FUNCTION)["ReservedConcurrentExecutions"] == 10


def test_the_function_s_own_reservation_counts_towards_a_raise(code, tmp_path, monkeypatch):
    """Raising 10 to 20 needs 10 more, not 20: with 110 unreserved of 120 it fits; to 21
    it does not, and the function keeps its 20."""
    monkeypatch.setenv("MOTO_LAMBDA_CONCURRENCY_QUOTA", "120")
    config = make_config(tmp_path)
    create(config, code, reserved_concurrency="10")
    lam = boto3.client("lambda", region_name=REGION)
    plan = create(config, code, reserved_concurrency="20")
    assert [(s.resource, s.action) for s in plan.steps] == [("concurrency", "update")]
    assert lam.get_function_concurrency(FunctionName=FUNCTION)[
        "ReservedConcurrentExecutions"] == 20
    with pytest.raises(DeployError, match="leave 99 unreserved"):
        create(config, code, reserved_concurrency="21")
    assert lam.get_function_concurrency(FunctionName=FUNCTION)[
        "ReservedConcurrentExecutions"] == 20
    # status shows the refusal as the concurrency row's drift.
    opts = deploy.DeployOptions.from_config(config, reserved_concurrency="21")
    report = deploy.status(config, opts, clients_for(config, opts), code=code)
    [row] = [r for r in report.rows if r.resource == "concurrency"]
    assert not row.in_sync and "leave 99 unreserved" in row.actual
