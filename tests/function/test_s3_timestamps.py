"""Our S3 client reads S3's timestamps as botocore does, only faster.

The handler compares an object's ``LastModified`` between two HEADs and pypicloud stores
it as the package's upload time, so the fast parser must give botocore's instant for
every form S3 answers in: RFC 1123 in HEAD's ``Last-Modified`` header ("Sun, 06 Dec 2026
20:00:00 GMT", always GMT, per the S3 API reference's HeadObject response syntax) and
ISO 8601 in ListObjectsV2's XML.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import boto3
from botocore.utils import parse_timestamp
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws
from pypicloud.util import EnvironSettings

from pypicloud_s3sync.function.s3 import fast_timestamp, s3_client

#: Whole seconds in UTC, the precision of HEAD's header, over the years S3 can hold.
MOMENTS = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)
                       ).map(lambda d: d.replace(microsecond=0, tzinfo=UTC))


@given(MOMENTS)
def test_head_s_rfc_1123_form_reads_as_botocore_reads_it(moment: datetime) -> None:
    header = format_datetime(moment, usegmt=True)
    parsed = fast_timestamp(header)
    assert parsed == parse_timestamp(header) == moment
    assert parsed.utcoffset().total_seconds() == 0


@given(MOMENTS, st.integers(0, 999))
def test_the_listing_s_iso_form_reads_as_botocore_reads_it(moment: datetime,
                                                           millis: int) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
    assert fast_timestamp(text) == parse_timestamp(text)


def test_other_forms_are_botocore_s_own() -> None:
    for text in ("1765051200", "2026-12-06T20:00:00+01:00", "Sunday, 06-Dec-26 20:00:00 UTC"):
        assert fast_timestamp(text) == parse_timestamp(text), text


def test_a_head_and_a_listing_give_what_a_plain_boto3_client_gives(aws_env: None) -> None:
    with mock_aws():
        plain = boto3.client("s3", region_name="us-east-1")
        plain.create_bucket(Bucket="timestamps")
        plain.put_object(Bucket="timestamps", Key="pypi/a/a-1.0.tar.gz", Body=b"x")
        ours = s3_client(EnvironSettings({"storage.region_name": "us-east-1"}, {}))
        for client_read in (
            lambda c: c.head_object(Bucket="timestamps", Key="pypi/a/a-1.0.tar.gz")[
                "LastModified"],
            lambda c: c.list_objects_v2(Bucket="timestamps")["Contents"][0]["LastModified"],
        ):
            assert client_read(ours) == client_read(plain)
