"""The storage seam: one :class:`SqlDialect` per supported database.

``Database`` picks the dialect once, when it is opened (``Database.sql``). Store functions
that are given only a connection find the same object with :func:`of`; this module is the
only place that reads a dialect's name.
"""

from __future__ import annotations

from sqlalchemy import Connection

from .base import SqlDialect
from .postgres import PostgresDialect
from .sqlite import SqliteDialect

__all__ = ["SqlDialect", "for_name", "of"]

_BY_NAME: dict[str, SqlDialect] = {d.name: d for d in (PostgresDialect(), SqliteDialect())}


def for_name(name: str) -> SqlDialect:
    """The dialect for a SQLAlchemy backend name; a clear error for an unsupported one."""
    try:
        return _BY_NAME[name]
    except KeyError:
        supported = ", ".join(sorted(_BY_NAME))
        raise ValueError(
            f"Chameleon does not support the database {name!r} (supported: {supported})"
        ) from None


def of(conn: Connection) -> SqlDialect:
    """The dialect of the database ``conn`` is connected to."""
    return _BY_NAME[conn.dialect.name]
