"""Connections and transactions on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from .writer_lock import WriterQueue

READ_ONLY = "chameleon_read_only"


class Database:
    """Owns the SQLAlchemy engine; every write is one transaction from :meth:`begin`."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = make_url(url)
        self.engine = _create_engine(url, pool_size=pool_size, echo=echo)
        self._writers = WriterQueue() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """One transaction: committed when the block exits normally, rolled back otherwise."""
        if self._writers is None:
            with self.engine.begin() as conn:
                yield conn
            return
        self._writers.acquire()
        try:
            with self.engine.begin() as conn:
                yield conn
        finally:
            self._writers.release()

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        """A connection where each statement commits on its own (for one-statement writes)."""
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reads; rolled back at the end, so it must not write."""
        with self.engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def _create_engine(url: str, *, pool_size: int, echo: bool) -> Engine:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        engine = create_engine(url, **kwargs)
        _configure_sqlite(engine, in_memory=parsed.database in (None, "", ":memory:"))
        return engine
    # No pre-ping: it would cost a round trip per transaction; pool_recycle bounds staleness.
    kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine, *, in_memory: bool) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot take a write lock up
    # front; we disable it and issue BEGIN IMMEDIATE so that a transaction holds the write
    # lock from its first statement and two read-modify-write transactions never interleave.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Readers take no lock up front: in WAL mode they never block the writer.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
