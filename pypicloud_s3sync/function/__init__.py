"""The Lambda function: everything the zip carries of ours, and nothing else.

S3 event -> key -> object state (one HEAD) -> pypicloud cache write.  This package may
import :mod:`pypicloud_s3sync.config`, :mod:`~pypicloud_s3sync.backends` and
:mod:`~pypicloud_s3sync.compat`, never provisioning, admin, bundle or command code: the
bundle ships what this package imports, and ``lint-imports`` holds the line.
"""
