"""Lambda bundle: size, build time and cold start, ours against pypicloud's and the floor.

Run from the repository root with the project's venv::

    .venv/bin/python benchmarks/bundle.py [-n 5] [--backends sqlite redis dynamo]

``--work DIR`` keeps what does not depend on this code (the runtime's boto3, the
floor's libraries, pypicloud 1.3.12's bundle) in DIR for the next run, and
``--builder-cache DIR`` gives our builder a cache that already holds its wheels (the
"cold build" column is then not cold); both make repeated runs start in seconds.

Side by side, per cache backend:

* **ours**: ``build_bundle()`` for this interpreter's runtime; cold build (empty cache:
  import probe, wheel downloads, bytecode, zip) and warm rebuild (same inputs again).
* **pypicloud 1.3.12**: built the way its ``ppc-build-lambda-bundle`` builds it (a venv,
  ``pip install pypicloud[dynamo,redis]==1.3.12`` plus ``SQLAlchemy<2``, the one pin it
  needs to import at all, then all of site-packages zipped with its handler).
* **floor**: no pypicloud at all: ``import boto3``, an S3 client, the backend's client
  library, i.e. the one pypicloud's cache backend talks to its database through
  (SQLAlchemy's engine for SQL, redis-py for Redis, dynamo3's connection for DynamoDB;
  not their object mappers), one HEAD and one write.  The ratio column is against it.
* **floor, lowest** (SQL and DynamoDB): the same with the least there is instead of
  that library (``sqlite3``; boto3's own DynamoDB client).  No handler that reuses
  pypicloud's cache code can go below the row above it, so this one is for reference.
* **floor + pypicloud imports**: the floor, after importing the pypicloud modules any
  handler that reuses pypicloud's cache and storage code must import (from our bundle,
  with pypicloud's package inits deferred as our handler defers them, but with the
  garbage collector left running): what reusing pypicloud's code costs as such.

Cold start = a fresh interpreter as Lambda starts one (``-I -S -B``: no site-packages,
read-only code, only the unzipped bundle and the runtime's own boto3 on ``sys.path``)
importing the handler, bootstrapping and handling one ObjectCreated event: the median
over ``-n`` processes (the variants' runs interleaved) of the time from starting the
process to the handler's return, which is what Lambda bills as init plus the first
invocation.  Lambda keeps the process for the next events, so its exit is not part of a
cold start; the time it takes is shown apart ("exit s").  Zips are extracted with their
timestamps, as Lambda does, so bytecode that depends on them behaves as it would there.
AWS is a moto server; Redis is the local server (a database number of our own); SQLite
is a file.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REGION = "us-east-1"
BUCKET = "packages"
MIB = 1024 * 1024

RUNNER = r"""
import json, os, sys, time
start = time.perf_counter()
paths, module, func, event = sys.argv[1].split(os.pathsep), sys.argv[2], sys.argv[3], sys.argv[4]
sys.path[:0] = paths
import importlib
imported = None
try:
    handler = getattr(importlib.import_module(module), func)
    imported = time.perf_counter()
    handler(json.loads(event), None)
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}".splitlines()[0][:120]
done = time.perf_counter()
print("BENCH " + json.dumps({"import": (imported or done) - start, "error": error}), flush=True)
"""

FLOOR = r'''
"""The least any sync function must do: boto3, an S3 client, the cache's client, a write."""
import os

import boto3

CACHE = os.environ["FLOOR_CACHE"]


def handle(event, context):
    record = event["Records"][0]["s3"]
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    s3 = boto3.client("s3", endpoint_url=endpoint)
    head = s3.head_object(Bucket=record["bucket"]["name"], Key=record["object"]["key"])
    item = {"filename": record["object"]["key"], "meta": str(head["Metadata"])}
    if os.environ.get("FLOOR_PYPICLOUD"):
        import importlib

        from pypicloud_s3sync.backends import defer_package_inits
        from pypicloud_s3sync.function.imports import without_cloudfront_signing

        defer_package_inits()
        without_cloudfront_signing()
        for module in os.environ["FLOOR_PYPICLOUD"].split(","):
            importlib.import_module(module)
    if CACHE == "sqlite":
        import sqlalchemy

        engine = sqlalchemy.create_engine("sqlite:///" + os.environ["FLOOR_SQLITE"])
        with engine.begin() as db:
            db.execute(sqlalchemy.text(
                "CREATE TABLE IF NOT EXISTS floor (filename TEXT PRIMARY KEY, meta TEXT)"))
            db.execute(sqlalchemy.text("INSERT OR REPLACE INTO floor VALUES (:f, :m)"),
                       {"f": item["filename"], "m": item["meta"]})
    elif CACHE == "sqlite3":
        import sqlite3

        db = sqlite3.connect(os.environ["FLOOR_SQLITE"])
        db.execute("CREATE TABLE IF NOT EXISTS floor (filename TEXT PRIMARY KEY, meta TEXT)")
        db.execute("INSERT OR REPLACE INTO floor VALUES (?, ?)", (item["filename"], item["meta"]))
        db.commit()
    elif CACHE == "redis":
        import redis

        redis.Redis.from_url(os.environ["FLOOR_REDIS"]).hset("floor:" + item["filename"],
                                                             mapping=item)
    elif CACHE == "dynamo":
        from urllib.parse import urlsplit

        from dynamo3 import DynamoDBConnection

        url = urlsplit(endpoint)
        dynamo = DynamoDBConnection.connect(os.environ["AWS_REGION"], host=url.hostname,
                                            port=url.port, is_secure=url.scheme == "https")
        dynamo.put_item2("floor", item)
    else:  # dynamo-boto3
        ddb = boto3.client("dynamodb", endpoint_url=endpoint)
        ddb.put_item(TableName="floor", Item={k: {"S": v} for k, v in item.items()})
'''


#: The floor's variant with no client library between the handler and the database.
LOWEST = {"sqlite": "sqlite3", "dynamo": "dynamo-boto3"}


BACKENDS = ["sqlite", "redis", "dynamo"]


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
                   check=True, capture_output=True)


def pip_target(target: Path, *requirements: str) -> Path:
    """``requirements`` installed into ``target`` unless a run before already did."""
    marker = target / (".installed-" + "-".join(sorted(requirements)))
    if not marker.exists():
        pip("install", "--target", str(target), *requirements)
        marker.touch()
    return target


def extract(zip_path: Path, directory: Path) -> Path:
    """Unzip keeping each entry's timestamp, as Lambda's extraction does."""
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            archive.extract(info, directory)
            stamp = time.mktime((*info.date_time, 0, 0, -1))
            os.utime(directory / info.filename, (stamp, stamp))
    return directory


def extract_once(zip_path: Path, directory: Path) -> Path:
    """``extract``, unless a run before did (the runs read it, they never write it)."""
    marker = directory / ".extracted"
    if not marker.exists():
        shutil.rmtree(directory, ignore_errors=True)
        extract(zip_path, directory)
        marker.touch()
    return directory


def unzipped_size(zip_path: Path) -> int:
    with zipfile.ZipFile(zip_path) as archive:
        return sum(info.file_size for info in archive.infolist())


@dataclass(frozen=True)
class Variant:
    """One way to handle the event: what is on ``sys.path``, the handler, its environment."""

    paths: list[Path]
    module: str
    func: str
    env: dict[str, str]


def start_once(variant: Variant, event: dict) -> tuple[float, float, dict | None, str]:
    """(seconds to the handler's return, seconds to exit, the runner's report, stderr)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-B", "-c", RUNNER,
         os.pathsep.join(map(str, variant.paths)), variant.module, variant.func,
         json.dumps(event)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=variant.env,
        cwd=variant.paths[0],
    )
    result, returned = None, None
    for line in proc.stdout:  # the handler's own log lines come first
        if line.startswith("BENCH "):
            returned = time.perf_counter()
            result = json.loads(line.removeprefix("BENCH "))
            break
    _, stderr = proc.communicate()
    ended = time.perf_counter()
    returned = returned or ended
    return returned - start, ended - returned, result, stderr


def cold_starts(variants: dict[str, Variant], event: dict, runs: int) -> dict[str, dict]:
    """Median cold start of each variant, their runs interleaved.

    Round-robin, so that a slower minute of a shared machine slows every variant alike
    instead of skewing one row's ratio; one unmeasured round first, so that every variant
    starts with its files in the page cache.
    """
    samples: dict[str, list[tuple[float, float, dict | None, str]]] = {n: [] for n in variants}
    for round_ in range(runs + 1):
        for name, variant in variants.items():
            sample = start_once(variant, event)
            if round_:
                samples[name].append(sample)
    results = {}
    for name, runs_ in samples.items():
        reports = [(wall, exit_, report) for wall, exit_, report, _ in runs_ if report]
        errors = {report["error"] for _, _, report in reports if report["error"]}
        errors |= {(stderr.strip().splitlines() or ["no output"])[-1][:120]
                   for _, _, report, stderr in runs_ if report is None}
        nan = float("nan")
        results[name] = {
            "wall": statistics.median(w for w, _, _ in reports) if reports else nan,
            "exit": statistics.median(e for _, e, _ in reports) if reports else nan,
            "import": statistics.median(r["import"] for _, _, r in reports) if reports else nan,
            "error": "; ".join(sorted(errors)) or None,
        }
    return results


def s3_event(key: str) -> dict:
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2026-11-27T12:00:00.000Z",
        "eventName": "ObjectCreated:CompleteMultipartUpload",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "bench",
               "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
               "object": {"key": quote_plus(key, safe="/"), "size": 100,
                          "sequencer": "0055AED6DCD90281E5"}},
    }]}


def build_original(work: Path) -> tuple[Path, float]:
    """pypicloud 1.3.12's recipe (lambda_scripts._build_lambda_bundle), minus its crash;
    built once per work directory (the build time is kept beside the zip)."""
    bundle = work / "original.zip"
    timing = work / "original-build-seconds"
    if bundle.exists() and timing.exists():
        return bundle, float(timing.read_text())
    shutil.rmtree(work / "original", ignore_errors=True)  # extracted from an older zip
    start = time.perf_counter()
    venv = work / "original-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                    "pypicloud[dynamo,redis]==1.3.12", "SQLAlchemy<2"],
                   check=True, capture_output=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "zope" / "__init__.py").touch()  # its hack; the repoze one crashes today
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(site.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(site))
        handler = site / "pypicloud" / "_lambda_handler.py"
        archive.write(handler, "lambda_script.py")
    seconds = time.perf_counter() - start
    shutil.rmtree(venv)  # only the zip is used again
    timing.write_text(str(seconds))
    return bundle, seconds


def main(argv: list[str] | None = None) -> int:
    from benchmarks.options import benchmark_parser

    parser = benchmark_parser(
        __doc__, n=5, backends=BACKENDS,
        n_help="cold starts per variant and backend (the median is shown)")
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="keep the runtime's boto3, the floor's libraries and pypicloud "
                             "1.3.12's bundle here and reuse them (default: a fresh "
                             "directory, removed afterwards)")
    parser.add_argument("--builder-cache", type=Path, metavar="DIR",
                        help="our builder's cache (default: an empty one, so that the cold "
                             "build is cold)")
    parser.add_argument("--without-original", action="store_true",
                        help="leave out pypicloud 1.3.12's own bundle (its fresh venv and "
                             "pip install take minutes); for the test suite's smoke run")
    args = parser.parse_args(argv)

    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    fake_aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    os.environ.update(fake_aws)

    import boto3
    from moto.server import ThreadedMotoServer

    from pypicloud_s3sync.bundle.builder import build_bundle
    from pypicloud_s3sync.config import load_config
    from tests.support.pypicloud_app import build_cache, sdist_bytes
    from tests.support.services import REDIS_ADMIN, claim_redis_database

    work = args.work or Path(tempfile.mkdtemp(prefix="ppc-bench-bundle-"))
    work.mkdir(parents=True, exist_ok=True)
    # What this run builds and measures; never reused.
    run = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    redis_db = claim_redis_database(REDIS_ADMIN) if "redis" in args.backends else None
    try:
        print("preparing: the runtime's boto3, the floor's redis client, "
              "pypicloud 1.3.12's bundle...", file=sys.stderr)
        from importlib.metadata import version

        runtime = work / "lambda-runtime"
        pip_target(runtime, f"boto3=={version('boto3')}")
        floor_dir = work / "floor"
        pip_target(floor_dir, "--no-deps", f"redis=={version('redis')}",
                   f"SQLAlchemy=={version('SQLAlchemy')}", f"dynamo3=={version('dynamo3')}")
        (floor_dir / "floor_handler.py").write_text(FLOOR)  # this run's, always
        original_zip = original_dir = None
        if not args.without_original:
            original_zip, original_build = build_original(work)
            original_dir = extract_once(original_zip, work / "original")

        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=BUCKET)
        boto3.client("dynamodb", endpoint_url=endpoint).create_table(
            TableName="floor", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "filename", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "filename", "AttributeType": "S"}])

        rows = []
        for cache in args.backends:
            db = {
                "sqlite": {"pypi.db": "sql", "db.url": f"sqlite:///{run / 'cache.sqlite'}"},
                "redis": {"pypi.db": "redis", "db.url": redis_db.url if redis_db else ""},
                "dynamo": {"pypi.db": "dynamo", "db.region_name": REGION, "db.host": host,
                           "db.port": str(port), "db.secure": "false"},
            }[cache]
            settings = {"pypi.storage": "s3", "storage.bucket": BUCKET,
                        "storage.region_name": REGION, "storage.endpoint_url": endpoint, **db}
            # One package in the bucket, uploaded by pypicloud itself (metadata and all).
            pypicloud_cache = build_cache(settings)
            name = f"bench-{cache}"
            pypicloud_cache.upload(f"{name}-1.0.tar.gz", io.BytesIO(sdist_bytes(name, "1.0")),
                                   name=name, version="1.0", summary="benchmark")
            try:
                import transaction

                transaction.commit()
            except ImportError:
                pass
            key = next(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]
                       if o["Key"].endswith(f"{name}-1.0.tar.gz"))
            event = s3_event(key)

            config = load_config(settings)
            os.environ["PPC_S3SYNC_CACHE_DIR"] = str(args.builder_cache
                                                     or run / f"cache-{cache}")
            start = time.perf_counter()
            ours = build_bundle(config, output=run / f"ours-{cache}.zip",
                                runtime=f"python3.{sys.version_info.minor}")
            cold_build = time.perf_counter() - start
            start = time.perf_counter()
            build_bundle(config, output=run / f"ours-{cache}.zip",
                         runtime=f"python3.{sys.version_info.minor}")
            warm_build = time.perf_counter() - start
            ours_dir = extract(ours.path, run / f"ours-{cache}")

            env = {**fake_aws, "LANG": "C.UTF-8", "AWS_ENDPOINT_URL": endpoint,
                   "PYPICLOUD_SETTINGS": json.dumps(config.function.values)}
            original_settings = {k: v for k, v in settings.items()
                                 if k == "pypi.db" or k.startswith("db.")}
            floor_env = {**env, "FLOOR_CACHE": cache,
                         "FLOOR_SQLITE": str(run / "floor.sqlite"),
                         "FLOOR_REDIS": redis_db.url if redis_db else ""}
            backend_module = {"sqlite": "pypicloud.cache.sql",
                              "redis": "pypicloud.cache.redis_cache",
                              "dynamo": "pypicloud.cache.dynamo"}[cache]
            variants = {
                "ours": Variant([ours_dir, runtime], "pypicloud_s3sync.handler",
                                "handle_event", env),
                "floor": Variant([floor_dir, runtime], "floor_handler", "handle", floor_env),
                "floor_pypicloud": Variant(
                    [floor_dir, ours_dir, runtime], "floor_handler", "handle",
                    {**floor_env, "FLOOR_PYPICLOUD": f"{backend_module},pypicloud.storage.s3"}),
            }
            if original_dir is not None:
                variants["original"] = Variant(
                    [original_dir, runtime], "lambda_script", "handle_s3_event",
                    {**env, "PYPICLOUD_SETTINGS": json.dumps(original_settings)})
            if cache in LOWEST:
                variants["floor_lowest"] = Variant(
                    [floor_dir, runtime], "floor_handler", "handle",
                    {**floor_env, "FLOOR_CACHE": LOWEST[cache]})
            print(f"measuring {cache}: {len(variants)} variants x {args.n} cold starts...",
                  file=sys.stderr)
            starts = cold_starts(variants, event, args.n)
            rows.append({
                "cache": cache,
                "ours": {"zip": ours.size, "unzipped": ours.unzipped_size,
                         "cold_build": cold_build, "warm_build": warm_build, **starts["ours"]},
                "original": original_zip and {
                    "zip": original_zip.stat().st_size, "unzipped": unzipped_size(original_zip),
                    "cold_build": original_build, "warm_build": original_build,
                    **starts["original"]},
                "floor": starts["floor"],
                "floor_lowest": starts.get("floor_lowest"),
                "floor_pypicloud": starts["floor_pypicloud"],
            })
        report(rows, args.n)
    finally:
        if redis_db:
            redis_db.release()
        server.stop()
        shutil.rmtree(work if args.work is None else run, ignore_errors=True)
    return 0


def report(rows: list[dict], runs: int) -> None:
    print(f"\nLambda bundle, python3.{sys.version_info.minor} x86_64; cold start = median "
          f"of {runs} fresh `python -I -S -B` processes, from starting the process to the "
          "handler's return (import + bootstrap + first event)\n")
    header = (f"{'cache':7} {'bundle':21} {'zip MiB':>8} {'unzip MiB':>9} {'cold build':>10} "
              f"{'warm build':>10} {'import s':>8} {'cold start s':>12} {'vs floor':>8} "
              f"{'exit s':>6}")
    print(header)
    print("-" * len(header))
    for row in rows:
        floor = row["floor"]["wall"]
        for label, key in (("ours", "ours"), ("pypicloud 1.3.12", "original")):
            r = row[key]
            if r is None:
                print(f"{row['cache']:7} {label:21} left out (--without-original)")
                continue
            print(f"{row['cache']:7} {label:21} {r['zip'] / MIB:8.2f} {r['unzipped'] / MIB:9.2f} "
                  f"{r['cold_build']:9.2f}s {r['warm_build']:9.3f}s {r['import']:8.3f} "
                  f"{r['wall']:12.3f} {r['wall'] / floor:7.2f}x {r['exit']:6.3f}"
                  + (f"  fails: {r['error']}" if r["error"] else ""))
        for label, key in (("floor + pypicloud", "floor_pypicloud"), ("floor", "floor"),
                           ("floor, lowest", "floor_lowest")):
            f = row[key]
            if f is None:
                continue
            print(f"{row['cache']:7} {label:21} {'-':>8} {'-':>9} {'-':>10} {'-':>10} "
                  f"{f['import']:8.3f} {f['wall']:12.3f} {f['wall'] / floor:7.2f}x "
                  f"{f['exit']:6.3f}" + (f"  fails: {f['error']}" if f["error"] else ""))
    print("\npypicloud 1.3.12's bundle is one zip for every backend; its build time is "
          "venv + pip install (pip's own cache warm), and it has no cache of its own "
          "(warm = cold).\nThe floor's cache client is the library pypicloud's backend "
          "talks through (SQLAlchemy, redis-py, dynamo3); 'lowest' uses sqlite3 and boto3's "
          "DynamoDB client instead.\nTargets: ours <= 10 MiB zipped, cold start <= 1.5x "
          "the floor.")


if __name__ == "__main__":
    sys.exit(main())
