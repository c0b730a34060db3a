"""Build a real pypicloud from an ini file and drive it the way its users do.

``Pypicloud`` is pypicloud's own WSGI app (``pyramid.paster.get_app`` on an ini that
we write), wrapped in webtest, plus the cache built by pypicloud's own factory from the
same settings, so that tests can check what the server itself would see.
"""

from __future__ import annotations

import base64
import io
import tarfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADMIN = ("admin", "admin-pass")
USER = ("alice", "alice-pass")


def _hash(password: str) -> str:
    from pypicloud.access import get_pwd_context

    return get_pwd_context(rounds=1000).hash(password)


def basic_auth(user: tuple[str, str]) -> dict[str, str]:
    token = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def call_api(app: Any, url: str, method: str = "post", user: tuple[str, str] | None = None,
             body: Any = None, content_type: str | None = "application/json",
             headers: dict[str, str] | None = None) -> Any:
    """One request to the admin API as a client would send it: basic auth as ``user``
    (none: anonymous), a JSON body for POST/PUT/DELETE unless another content type is
    given, and every status returned rather than raised."""
    import json

    kwargs: dict[str, Any] = {"status": "*", "headers": headers or {},
                              "extra_environ": basic_auth(user) if user else {}}
    if method in ("post", "put", "delete"):
        if content_type == "application/json":
            kwargs["params"] = json.dumps({} if body is None else body)
        elif body is not None:
            kwargs["params"] = body
        if content_type:
            kwargs["content_type"] = content_type
    return getattr(app, method)(url, **kwargs)


def sdist_bytes(name: str, version: str, summary: str = "A test package") -> bytes:
    """A minimal but real sdist, so pypicloud parses it like any upload."""
    buf = io.BytesIO()
    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {summary}\n"
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = pkg_info.encode()
        info = tarfile.TarInfo(f"{name}-{version}/PKG-INFO")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_ini(path: Path, settings: dict[str, str], include_plugin: bool = True) -> dict[str, str]:
    """Write a pypicloud ini with two users (``admin`` is an admin) and the given
    settings; returns every setting written."""
    base = {
        "use": "egg:pypicloud",
        "pypi.default_read": "authenticated",
        "pypi.default_write": "authenticated",
        "pypi.fallback": "none",
        "auth.admins": ADMIN[0],
        f"user.{ADMIN[0]}": _hash(ADMIN[1]),
        f"user.{USER[0]}": _hash(USER[1]),
        "session.encrypt_key": "x" * 32,
        "session.validate_key": "y" * 32,
        "pypi.storage": "s3",
        "storage.region_name": "us-east-1",
    }
    if include_plugin:
        base["pyramid.includes"] = "pypicloud_s3sync"
    base.update(settings)
    lines = "\n".join(f"{key} = {value}" for key, value in base.items())
    path.write_text(
        "[app:main]\n" + lines.replace("%", "%%") + "\n\n"
        + textwrap.dedent(
            """
            [server:main]
            use = egg:waitress#main
            host = 127.0.0.1
            port = 6543
            """
        )
    )
    return base


@dataclass
class Pypicloud:
    """A running pypicloud (in-process WSGI) with its ini and settings."""

    ini: Path
    settings: dict[str, str]
    app: Any = field(repr=False)

    def upload(self, name: str, version: str, summary: str = "A test package",
               user: tuple[str, str] = ADMIN, **kwargs: Any) -> Any:
        filename = f"{name}-{version}.tar.gz"
        return self.app.post(
            f"/api/package/{name}/{filename}",
            params={"summary": summary},
            upload_files=[("content", filename, sdist_bytes(name, version, summary))],
            extra_environ=basic_auth(user),
            **kwargs,
        )

    def delete(self, name: str, filename: str, user: tuple[str, str] = ADMIN) -> Any:
        return self.app.delete(f"/api/package/{name}/{filename}",
                               extra_environ=basic_auth(user))

    def simple(self, name: str, user: tuple[str, str] = ADMIN) -> list[str]:
        """Filenames listed on /simple/<name>/, as pip would see them."""
        import re

        res = self.app.get(f"/simple/{name}/", extra_environ=basic_auth(user), status="*")
        if res.status_int == 404:
            return []
        assert res.status_int == 200, res
        return re.findall(r">([^<]+)</a>", res.text)

    def download(self, name: str, filename: str, user: tuple[str, str] = ADMIN) -> bytes:
        """The file's bytes, following pypicloud's redirect to S3 as pip would."""
        import requests

        res = self.app.get(f"/api/package/{name}/{filename}", extra_environ=basic_auth(user))
        if res.status_int in (301, 302, 303, 307):
            reply = requests.get(res.location, timeout=30)
            reply.raise_for_status()
            return reply.content
        return res.body

    def cache(self) -> Any:
        """A cache object built from the same settings by pypicloud's own factory."""
        return build_cache(self.settings)


def build_cache(settings: dict[str, str]) -> Any:
    from pypicloud.cache import get_cache_impl
    from pypicloud.util import EnvironSettings

    from pypicloud_s3sync import compat

    compat.apply()
    env_settings = EnvironSettings(dict(settings), {})
    cache_cls = get_cache_impl(env_settings)
    return cache_cls(**cache_cls.configure(env_settings))


def create_dynamo_tables(settings: dict[str, str]) -> None:
    """What the pypicloud server's first start does for a DynamoDB cache: its own
    ``configure`` creates the tables.  The sync only checks that they exist."""
    from .sync_harness import close_cache

    close_cache(build_cache({**settings, "pypi.storage": "file", "storage.dir": "/tmp"}))


def make_app(ini: Path) -> Any:
    from pyramid.paster import get_app
    from webtest import TestApp

    return TestApp(get_app(str(ini)))
