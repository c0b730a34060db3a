"""Packaging for pypicloud-s3sync.

The pins below are not taste: pypicloud 1.3.12 (its last release) stops working with
SQLAlchemy 2 and needs ``pkg_resources``, which setuptools 82 no longer ships.
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

CACHE_EXTRAS = {
    "dynamo": ["flywheel>=0.5.4", "dynamo3>=0.4.10"],
    "redis": ["redis>=4"],
    "postgres": ["psycopg2-binary>=2.9"],
    "mysql": ["PyMySQL>=1.0"],
}

TEST_REQUIRES = [
    "pytest>=8",
    # Runs the suite on every core: most of its time is subprocesses and servers.
    "pytest-xdist>=3",
    "hypothesis>=6.100",
    "WebTest>=3",
    "moto[server,s3,sqs,sns,iam,awslambda,events,dynamodb,sts]>=5.0",
    "build>=1",
    "wheel",
    "ruff",
    # Checks the package's import rules (.importlinter): what the function may import.
    "import-linter>=2",
    "sphinx>=7",
    # IAM policy linter; its AWS action tables ship inside the package (works offline).
    "parliament>=1.6",
    # Lints the exported CloudFormation template (its resource schemas ship inside).
    "cfn-lint>=1",
    # Lambda's runtime interface client: the tests run every bundle under it.
    "awslambdaric>=3",
    # make mutate (tools/mutation/mutation.py): mutation testing, not run by make test.
    "mutmut>=3.8,<4",
    # Drives the system's Chromium (never its own browser downloads) for the sync page.
    "playwright>=1.40",
]

setup(
    name="pypicloud-s3sync",
    version="0.1.0",
    description="Keep pypicloud caches in sync with replicated S3 buckets",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["pypicloud_s3sync", "pypicloud_s3sync.*"]),
    include_package_data=True,
    # The admin page's template: the server reads it at request time.
    package_data={"pypicloud_s3sync.admin": ["page.html"]},
    install_requires=[
        "pypicloud==1.3.12",
        "SQLAlchemy>=1.4,<2",
        "packaging",
        "setuptools<82",
        "boto3>=1.26",
        "PasteDeploy",
        "pyramid",
    ],
    extras_require={
        **CACHE_EXTRAS,
        "all": sorted({req for reqs in CACHE_EXTRAS.values() for req in reqs}),
        "test": TEST_REQUIRES,
    },
    entry_points={
        "console_scripts": [
            "ppc-s3sync = pypicloud_s3sync.cli:main",
            "ppc-create-s3-sync = pypicloud_s3sync.cli:create_main",
            "ppc-delete-s3-sync = pypicloud_s3sync.cli:delete_main",
            "ppc-build-lambda-bundle = pypicloud_s3sync.cli:bundle_main",
        ],
    },
    classifiers=[
        "Framework :: Pyramid",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "License :: OSI Approved :: MIT License",
    ],
)
