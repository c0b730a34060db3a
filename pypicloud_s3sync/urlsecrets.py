"""Where a database or cache URL can hold a secret, read the way the drivers read it.

One parser serves every output that must not show a password (the withhold check, plans,
CLI messages, the admin API's scrubbing, the function's log lines), so a form of URL that
one of them recognises, all of them recognise.

The drivers do not agree with :func:`urllib.parse.urlsplit`: SQLAlchemy takes the
password up to the first ``@`` and lets it hold ``/`` or ``?``; urlsplit takes it up to
the last ``@`` of what it thinks is the host and loses it entirely when it holds a
``/``.  So the userinfo here extends over every ``@`` the host part could still contain,
and every reading of the password is reported.  Query parameters carry secrets too:
libpq's ``password``, ``sslpassword`` and ``sslkey``; PyMySQL's ``passwd`` and
``ssl_key``; redis-py's ``password`` and ``ssl_keyfile``/``ssl_password``; ODBC's
``PWD``.  A key file's path is no password, but it says where one lies, so it is
treated as one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

#: Query parameter names whose value is a secret (or the path of a key).
SECRET_PARAM = re.compile(r"pass|pwd|secret|token|ssl_?key|private|credential", re.IGNORECASE)

#: What a redacted secret looks like in every output.
MASK = "***"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_HOST_END = re.compile(r"[/?#]")


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    value: str


def _userinfo_password(url: str, after_scheme: int) -> _Span | None:
    rest = url[after_scheme:]
    at = rest.find("@")
    if at < 0:
        return None
    while True:
        delimiter = _HOST_END.search(rest, at + 1)
        limit = delimiter.start() if delimiter else len(rest)
        further = rest.find("@", at + 1, limit)
        if further < 0:
            break
        at = further
    userinfo = rest[:at]
    user, colon, password = userinfo.partition(":")
    if not colon or _HOST_END.search(user):
        return None
    start = after_scheme + len(user) + 1
    return _Span(start, start + len(password), password)


def _query_secrets(url: str, from_index: int) -> list[_Span]:
    question = url.find("?", from_index)
    if question < 0:
        return []
    end = url.find("#", question)
    end = len(url) if end < 0 else end
    spans = []
    position = question + 1
    # Split on "&" alone, as SQLAlchemy and Python's parse_qsl do: after a ";" the
    # value goes on.
    for pair in url[question + 1:end].split("&"):
        key, equals, value = pair.partition("=")
        if equals and value and SECRET_PARAM.search(unquote_plus(key)):
            start = position + len(key) + 1
            spans.append(_Span(start, start + len(value), value))
        position += len(pair) + 1
    return spans


def _spans(url: str) -> list[_Span]:
    scheme = _SCHEME.match(url)
    if scheme is None:
        return []
    spans = []
    password = _userinfo_password(url, scheme.end())
    if password is not None and password.value:
        spans.append(password)
    after_userinfo = password.end if password is not None else scheme.end()
    spans += _query_secrets(url, after_userinfo)
    return spans


def url_secrets(url: str) -> frozenset[str]:
    """Every secret in ``url``, as written and as the driver decodes it (empty if none)."""
    found: set[str] = set()
    for span in _spans(url):
        found.update({span.value, unquote(span.value), unquote_plus(span.value)})
        # SQLAlchemy stops the password at the first "@"; both readings must go.
        found.add(span.value.split("@", 1)[0])
    return frozenset(value for value in found if value)


def has_secret(url: str) -> bool:
    """True when ``url`` carries a password or key in any form a driver accepts."""
    return bool(_spans(url))


def redact(url: str) -> str:
    """``url`` with every secret replaced by ``***``: for messages, plans and logs."""
    spans = _spans(url)
    for span in sorted(spans, key=lambda s: s.start, reverse=True):
        url = url[:span.start] + MASK + url[span.end:]
    return url


def without_secrets(url: str) -> str:
    """``url`` with its password and secret parameters removed (not masked): what the
    function gets when the secret itself comes from Secrets Manager or SSM."""
    for span in sorted(_spans(url), key=lambda s: s.start, reverse=True):
        if url[span.start - 1] == ":":  # userinfo: drop ":password", keep the user
            user_start = url.index("://") + 3
            end = span.end + 1 if span.start - 1 == user_start else span.end  # and a bare "@"
            url = url[:span.start - 1] + url[end:]
            continue
        pair_start = max(url.rfind("&", 0, span.start), url.rfind("?", 0, span.start))
        pair_end = span.end + 1 if url[span.end:span.end + 1] == "&" else span.end
        url = url[:pair_start + 1] + url[pair_end:]
    return url.rstrip("?&")


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>]+")


def redact_text(text: str) -> str:
    """Every URL inside free text redacted (an error message quoting a connection URL).

    Every field of every log line comes through here, and almost none holds a URL: the
    one-substring test spares those the regular expression."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)


__all__ = ["MASK", "SECRET_PARAM", "has_secret", "redact", "redact_text", "url_secrets",
           "without_secrets"]
