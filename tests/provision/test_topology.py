"""Several inis as one deploy, before any AWS call: each ini's site, the buckets it
replicates to, and what the inis cannot share (no AWS needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pypicloud_s3sync.provision.errors import DeployError, OptionsError
from pypicloud_s3sync.provision.options import DeployOptions
from pypicloud_s3sync.provision.peers import Peer
from pypicloud_s3sync.provision.topology import sites

from ..support.deploy_helpers import make_config


def ini(tmp_path: Path, name: str, bucket: str, region: str, **settings: str) -> Any:
    return make_config(tmp_path, f"{name}.ini", **{"storage.bucket": bucket,
                                                   "storage.region_name": region,
                                                   **settings})


def plan_sites(*configs: Any, **flags: Any) -> list[Any]:
    """What the command line does: each ini's own settings with the same flags on top."""
    return sites(configs, [DeployOptions.from_config(c, **flags) for c in configs])


def test_one_ini_is_its_own_site_with_nothing_changed(tmp_path):
    config = ini(tmp_path, "only", "packages", "us-east-1")
    options = DeployOptions.from_config(config)
    [site] = sites([config], [options])
    assert site.options is options
    assert (site.region, site.bucket, site.prefix, site.peers, site.notes) == (
        "us-east-1", "packages", "pkgs/", (), ())


def test_the_first_ini_of_each_bucket_replicates_to_every_other_bucket(tmp_path):
    east = ini(tmp_path, "east", "pk-east", "us-east-1")
    west = ini(tmp_path, "west", "pk-west", "eu-west-1", **{"storage.prefix": "w/"})
    china = ini(tmp_path, "china", "pk-china", "cn-north-1")
    found = plan_sites(east, west, china)
    assert [s.region for s in found] == ["us-east-1", "eu-west-1", "cn-north-1"]
    assert found[0].peers == (Peer("pk-west", "eu-west-1", "w/"),
                              Peer("pk-china", "cn-north-1", "pkgs/", "aws-cn"))
    assert found[1].peers == (Peer("pk-east", "us-east-1", "pkgs/"),
                              Peer("pk-china", "cn-north-1", "pkgs/", "aws-cn"))
    assert found[2].peers[0].arn == "arn:aws:s3:::pk-east"
    assert all(s.options.delivery == "direct" and not s.notes for s in found)


def test_two_buckets_in_one_region_replicate_like_any_other_pair(tmp_path):
    first = ini(tmp_path, "first", "pk-a", "eu-west-1", **{"s3sync.function_name": "sync-a"})
    second = ini(tmp_path, "second", "pk-b", "eu-west-1", **{"s3sync.function_name": "sync-b"})
    found = plan_sites(first, second)
    assert [s.peers for s in found] == [(Peer("pk-b", "eu-west-1", "pkgs/"),),
                                        (Peer("pk-a", "eu-west-1", "pkgs/"),)]


def test_a_shared_bucket_gets_one_sync_per_ini_through_eventbridge(tmp_path):
    blue = ini(tmp_path, "blue", "shared", "us-east-1", **{"s3sync.function_name": "blue"})
    green = ini(tmp_path, "green", "shared", "us-east-1",
                **{"s3sync.function_name": "green", "storage.prefix": "green/"})
    west = ini(tmp_path, "west", "pk-west", "eu-west-1")
    found = plan_sites(blue, green, west)
    assert [s.options.delivery for s in found] == ["eventbridge", "eventbridge", "direct"]
    assert "green.ini" in found[0].notes[0] and "blue.ini" in found[1].notes[0]
    assert "delivery eventbridge: bucket shared is shared" in found[0].notes[0]
    assert not found[2].notes
    # The bucket's replication is planned once, by the first ini naming it; the other
    # region replicates to it once too.
    assert found[0].peers == (Peer("pk-west", "eu-west-1", "pkgs/"),)
    assert found[1].peers == ()
    assert found[2].peers == (Peer("shared", "us-east-1", "pkgs/"),)


def test_a_shared_bucket_keeps_eventbridge_chosen_in_the_ini_without_a_note(tmp_path):
    blue = ini(tmp_path, "blue", "shared", "us-east-1",
               **{"s3sync.function_name": "blue", "s3sync.delivery": "eventbridge"})
    green = ini(tmp_path, "green", "shared", "us-east-1", **{"s3sync.function_name": "green"})
    found = plan_sites(blue, green)
    assert [s.options.delivery for s in found] == ["eventbridge", "eventbridge"]
    assert [bool(s.notes) for s in found] == [False, True]


@pytest.mark.parametrize("setting, flags", [
    ({"s3sync.delivery": "direct"}, {}),
    ({}, {"delivery": "sqs"}),
])
def test_a_shared_bucket_refuses_another_delivery_chosen_for_it(tmp_path, setting, flags):
    blue = ini(tmp_path, "blue", "shared", "us-east-1",
               **{"s3sync.function_name": "blue", **setting})
    green = ini(tmp_path, "green", "shared", "us-east-1", **{"s3sync.function_name": "green"})
    with pytest.raises(DeployError) as raised:
        plan_sites(blue, green, **flags)
    message = str(raised.value)
    assert "blue.ini sets delivery" in message and "shared with" in message
    assert "green.ini" in message
    assert message.endswith("or use --delivery eventbridge")
    assert raised.value.for_api().endswith("or use s3sync.delivery = eventbridge")


def test_two_inis_deploying_one_function_in_one_region_are_refused(tmp_path):
    first = ini(tmp_path, "first", "pk-a", "eu-west-1")
    second = ini(tmp_path, "second", "pk-b", "eu-west-1")
    with pytest.raises(DeployError) as raised:
        plan_sites(first, second)
    message = str(raised.value)
    assert "would both deploy function pypicloud_s3_sync in eu-west-1" in message
    assert "set s3sync.function_name in" in message and "second.ini" in message
    assert message.endswith("give no -n, which names every ini's function")


def test_the_same_function_name_in_two_regions_is_the_normal_setup(tmp_path):
    found = plan_sites(ini(tmp_path, "east", "pk-east", "us-east-1"),
                       ini(tmp_path, "west", "pk-west", "eu-west-1"))
    assert {s.function_name for s in found} == {"pypicloud_s3_sync"}


def test_the_same_ini_given_twice_is_refused(tmp_path, monkeypatch):
    config = ini(tmp_path, "east", "pk-east", "us-east-1")
    monkeypatch.chdir(tmp_path)
    again = make_config(Path("."), "east.ini", **{"storage.bucket": "pk-east",
                                                  "storage.region_name": "us-east-1"})
    with pytest.raises(OptionsError, match="east.ini is given twice"):
        plan_sites(config, again)


def test_one_bucket_named_in_two_regions_is_refused(tmp_path):
    east = ini(tmp_path, "east", "pk", "us-east-1")
    west = ini(tmp_path, "west", "pk", "eu-west-1", **{"s3sync.function_name": "w"})
    with pytest.raises(DeployError, match="both name bucket pk, in us-east-1 and eu-west-1"):
        plan_sites(east, west)
