"""Which database errors mean "the database is unavailable", and what to tell the user.

Only faults of the database itself become :class:`DatabaseUnavailable`: an unreachable
server, a lost connection, refused credentials, a missing database, a busy SQLite file, an
exhausted pool. Integrity errors, SQL errors and the like are bugs or conflicts and stay as
they are. Messages name the database as the caller says (``subject``) and never its password.
"""

from __future__ import annotations

import re
import sqlite3

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from ..domain.errors import DatabaseUnavailable

# The exceptions worth asking :func:`unavailable` about.
FAULTS: tuple[type[Exception], ...] = (sa_exc.DBAPIError, sa_exc.TimeoutError)

SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")
SQLITE_UNOPENABLE = ("unable to open database file", "disk i/o error")
PG_MISSING = re.compile(r'database "[^"]*" does not exist')
PG_CREDENTIALS = (
    "password authentication failed",
    "authentication failed",
    "no pg_hba.conf entry",
    "no password supplied",
    'role "',
)
PG_UNREACHABLE = (
    "connection refused",
    "could not translate host name",
    "name or service not known",
    "timeout expired",
    "no route to host",
    "network is unreachable",
    "could not connect",
    "server closed the connection",
    "connection timed out",
)


def scrub(text: str, url: URL | str | None) -> str:
    """``text`` without the password of ``url`` (should a driver ever echo it)."""
    if url is None:
        return text
    try:
        password = (make_url(url) if isinstance(url, str) else url).password
    except sa_exc.ArgumentError:
        return text
    return text.replace(str(password), "***") if password else text


def unavailable(exc: BaseException, url: URL, subject: str) -> DatabaseUnavailable | None:
    """The :class:`DatabaseUnavailable` that ``exc`` amounts to, or None if it is no such fault."""
    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseUnavailable(
            f"{subject} has no free connection (the pool is exhausted): try again",
            reason="pool_timeout",
        )
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    detail = _driver_detail(exc, url)
    if isinstance(exc.orig, sqlite3.Error):
        low = detail.lower()
        if any(m in low for m in SQLITE_BUSY):
            return DatabaseUnavailable(
                f"{subject} is locked by another writer beyond the busy timeout: try again",
                reason="locked",
            )
        if "file is not a database" in low:
            return DatabaseUnavailable(
                f"cannot open {subject}: the file is not an SQLite database", reason="unopenable"
            )
        if any(m in low for m in SQLITE_UNOPENABLE):
            return DatabaseUnavailable(
                f"cannot open {subject}: {detail} (does its folder exist and is it writable?)",
                reason="unopenable",
            )
        return None
    if exc.connection_invalidated:
        return DatabaseUnavailable(f"lost the connection to {subject}: {detail}", reason="lost")
    if not isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return None
    return _pg_fault(detail, subject)


def _pg_fault(detail: str, subject: str) -> DatabaseUnavailable:
    low = detail.lower()
    if PG_MISSING.search(low):
        return DatabaseUnavailable(
            f"{subject} does not exist: create it (e.g. createdb), then run 'chameleon db upgrade'",
            reason="no_such_database",
        )
    if any(m in low for m in PG_CREDENTIALS):
        return DatabaseUnavailable(
            f"the server of {subject} refused the credentials: {detail}", reason="credentials"
        )
    if any(m in low for m in PG_UNREACHABLE):
        return DatabaseUnavailable(
            f"cannot reach the server of {subject}: {detail}", reason="unreachable"
        )
    return DatabaseUnavailable(f"{subject} is unavailable: {detail}", reason="unavailable")


def _driver_detail(exc: sa_exc.DBAPIError, url: URL) -> str:
    """The driver's message on one line: the server's FATAL text if any, else the first line."""
    text = scrub(str(exc.orig), url)
    fatal = re.search(r"FATAL:\s*(.*)", text)
    if fatal:
        return fatal.group(1).strip()
    first = text.strip().splitlines()[0] if text.strip() else type(exc.orig).__name__
    return re.sub(r"^connection failed:\s*", "", first).strip()
