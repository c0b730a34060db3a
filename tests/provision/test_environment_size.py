"""The function's environment against Lambda's 4 KB, checked at plan time.

"Function environment variables: 4 KB, for all environment variables associated with
the function, combined" (Lambda Developer Guide, Lambda quotas).  AWS counts keys and
values; moto stores any size, so tests/support/moto_gaps.py refuses what Lambda would.
"""

from __future__ import annotations

import boto3
import pytest

from pypicloud_s3sync.cli import main
from pypicloud_s3sync.provision import deploy
from pypicloud_s3sync.provision.errors import DeployError

from ..support import moto_gaps
from ..support.deploy_helpers import (
    REGION,
    create,
    function_names,
    make_config,
    write_zip,
)

FUNCTION = "pypicloud_s3_sync"
#: A PostgreSQL URL whose options make it long (certificates, search paths...).
LONG_URL = "postgresql://sync@db.internal/pypi?options=" + "-csearch_path%3Dpypi" * 220


@pytest.fixture
def code(aws, tmp_path, monkeypatch):
    moto_gaps.environment_limit(monkeypatch)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="packages")
    return deploy.ZipBundle.from_path(write_zip(tmp_path / "function.zip"))


def test_an_environment_over_4_kb_is_refused_before_anything_is_made(code, tmp_path, capsys):
    config = make_config(tmp_path, **{"pypi.db": "sql", "db.url": LONG_URL})
    with pytest.raises(DeployError) as refused:
        create(config, code)
    message = str(refused.value)
    assert "4 KB" in message and "4096 bytes" in message
    assert "db.url (4" in message  # the largest setting, with its size
    assert "--store-db-password" in message
    assert function_names() == []
    assert boto3.client("iam").list_roles()["Roles"] == []
    status = main(["create", str(tmp_path / "pypicloud.ini"), "--bundle",
                   str(tmp_path / "function.zip"), "--dry-run"])
    assert status == 2
    assert "would be" in capsys.readouterr().err


def test_variables_set_by_hand_count_too(code, tmp_path):
    """An update keeps the variables someone else set (they count toward the 4 KB): one
    of 3 KB leaves too little room for a longer URL, and -f refuses to update."""
    config = make_config(tmp_path)
    create(config, code)
    lam = boto3.client("lambda", region_name=REGION)
    variables = lam.get_function_configuration(FunctionName=FUNCTION)["Environment"][
        "Variables"]
    lam.update_function_configuration(FunctionName=FUNCTION, Environment={
        "Variables": {**variables, "PPC_EXTRA": "x" * 3000}})
    longer = make_config(tmp_path, **{"db.url": "redis://cache.internal:6379/0?x="
                                      + "y" * 1200})
    with pytest.raises(DeployError, match="PPC_EXTRA"):
        create(longer, code, force=True)
    assert lam.get_function_configuration(FunctionName=FUNCTION)["Environment"][
        "Variables"] == {**variables, "PPC_EXTRA": "x" * 3000}
