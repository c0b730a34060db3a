"""The settings loader: pypicloud's own config, read the way pypicloud reads it."""

from __future__ import annotations

import pytest

from pypicloud_s3sync.config import ConfigError, load_config


def write(tmp_path, body: str, name: str = "config.ini"):
    path = tmp_path / name
    path.write_text(body)
    return str(path)


BASE = """
[app:main]
use = egg:pypicloud
pypi.storage = s3
storage.bucket = my-packages
storage.prefix = pkgs/
storage.region_name = eu-west-1
storage.prepend_hash = false
storage.aws_access_key_id = AKIAEXAMPLE
storage.aws_secret_access_key = not-for-lambda
pypi.db = redis
db.url = redis://cache.internal:6379/0
auth.admins = admin
user.admin = $6$hash
session.encrypt_key = secret1
session.validate_key = secret2
"""


def test_target_comes_from_pypiclouds_storage_settings(tmp_path):
    config = load_config(write(tmp_path, BASE))
    assert config.target.bucket == "my-packages"
    assert config.target.prefix == "pkgs/"
    assert config.target.region == "eu-west-1"
    assert config.target.endpoint_url is None
    assert config.target.prepend_hash is False
    assert config.cache_backend == "redis"


def test_function_gets_cache_and_storage_keys_and_no_credentials(tmp_path):
    config = load_config(write(tmp_path, BASE))
    assert config.function.values == {
        "pypi.db": "redis",
        "pypi.storage": "s3",
        "db.url": "redis://cache.internal:6379/0",
        "storage.bucket": "my-packages",
        "storage.prefix": "pkgs/",
        "storage.region_name": "eu-west-1",
        "storage.prepend_hash": "false",
    }
    assert config.function.withheld == {}


def test_environment_overrides_apply_like_in_pypicloud(tmp_path):
    env = {"PPC_STORAGE_BUCKET": "from-env", "PPC_DB_URL": "redis://other:6379/3"}
    config = load_config(write(tmp_path, BASE), environ=env)
    assert config.target.bucket == "from-env"
    assert config.function.values["db.url"] == "redis://other:6379/3"
    assert config.function.values["storage.bucket"] == "from-env"


def test_db_url_with_password_is_withheld_and_flagged(tmp_path):
    body = BASE.replace("pypi.db = redis\ndb.url = redis://cache.internal:6379/0",
                        "pypi.db = sql\ndb.url = postgresql://app:hunter2@db.internal/pypi")
    config = load_config(write(tmp_path, body))
    assert "db.url" not in config.function.values
    reason = config.function.withheld["db.url"]
    assert "postgresql://app:***@db.internal/pypi" in reason
    assert "hunter2" not in reason
    assert "hunter2" not in repr(config.function.values)


def test_dynamo_credentials_are_dropped(tmp_path):
    body = BASE.replace(
        "pypi.db = redis\ndb.url = redis://cache.internal:6379/0",
        "pypi.db = dynamo\ndb.region_name = eu-west-1\ndb.namespace = prod-\n"
        "db.aws_access_key_id = AKIA\ndb.aws_secret_access_key = shh",
    )
    config = load_config(write(tmp_path, body))
    assert config.cache_backend == "dynamo"
    assert config.function.values["db.namespace"] == "prod-"
    assert not any("aws_" in key for key in config.function.values)


def test_named_section(tmp_path):
    path = write(tmp_path, BASE.replace("[app:main]", "[app:pypi]"))
    assert load_config(path + "#pypi").target.bucket == "my-packages"
    with pytest.raises(ConfigError, match=r"no \[app:main\] section.*#NAME"):
        load_config(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("pypi.storage = s3", "pypi.storage = file"), "needs pypi.storage = s3"),
        (("storage.bucket = my-packages\n", ""), "storage.bucket is not set"),
        (("pypi.db = redis", "pypi.db = nosuch.module.Cache"), "not a cache pypicloud knows"),
        (("db.url = redis://cache.internal:6379/0", ""), "needs db.url"),
    ],
)
def test_bad_config_gets_one_clear_line(tmp_path, change, message):
    config_path = write(tmp_path, BASE.replace(*change))
    with pytest.raises(ConfigError, match=message) as info:
        load_config(config_path)
    assert "\n" not in str(info.value)


def test_section_without_pypicloud_app(tmp_path):
    path = write(tmp_path, BASE.replace("use = egg:pypicloud\n", ""))
    with pytest.raises(ConfigError, match=r"\[app:main\] in .* has no 'use = egg:pypicloud'"):
        load_config(path)


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(str(tmp_path / "missing.ini"))


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    from pypicloud_s3sync.cli import main

    assert main(["status", str(tmp_path / "missing.ini")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ppc-s3sync status: error: cannot read") and "\n" not in err


DYNAMO = BASE.replace("pypi.db = redis", "pypi.db = dynamo\ndb.region_name = eu-west-1")


def _without(monkeypatch, *modules):
    """Make ``modules`` unimportable, as if not installed (and the backend not yet loaded)."""
    import sys

    for name in list(sys.modules):
        if name in ("pypicloud.cache.redis_cache", "pypicloud.cache.dynamo") or name in modules:
            monkeypatch.delitem(sys.modules, name)
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_a_missing_client_library_names_the_extra(tmp_path, monkeypatch):
    _without(monkeypatch, "flywheel")
    with pytest.raises(ConfigError, match=r"pypi.db = dynamo needs flywheel, which is not "
                                          r"installed: pip install 'pypicloud-s3sync\[dynamo\]'"):
        load_config(write(tmp_path, DYNAMO))


def test_any_other_failure_inside_a_backend_keeps_its_own_error(tmp_path, monkeypatch):
    """An import that breaks inside the backend (say, code that does not run on this
    Python) is a bug to see with its traceback, not a config error."""
    import builtins

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "dynamo3":
            raise AttributeError("module 'pkgutil' has no attribute 'ImpImporter'")
        return real_import(name, *args, **kwargs)

    _without(monkeypatch)
    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(AttributeError, match="ImpImporter"):
        load_config(write(tmp_path, DYNAMO))
