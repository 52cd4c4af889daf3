"""Connections and transactions on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from . import dialects
from .dialects import SqlDialect
from .writer_lock import WriterQueue

READ_ONLY = "chameleon_read_only"


class Database:
    """Owns the SQLAlchemy engine; every write is one transaction from :meth:`begin`."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        echo: bool = False,
        sqlite_busy_timeout: float = 30.0,
        connect_timeout: int = 10,
        pool_timeout: float = 30.0,
    ) -> None:
        self.url = make_url(url)
        self.engine = _create_engine(
            url, pool_size=pool_size, echo=echo, busy_timeout=sqlite_busy_timeout,
            connect_timeout=connect_timeout, pool_timeout=pool_timeout,
        )  # fmt: skip
        #: The storage seam for this database, chosen once (see ``store.dialects``).
        self.sql: SqlDialect = dialects.for_name(self.engine.dialect.name)
        # SQLite has one writer at a time: writers queue in-process instead of spinning
        # on the busy timeout.
        self._writers = None if self.sql.single_statement_writes else WriterQueue()

    @property
    def where(self) -> str:
        """The database as users may see it: an absolute file path, or the URL sans password."""
        return describe(self.url)

    @property
    def missing_file(self) -> Path | None:
        """The SQLite file this database would be, if it does not exist (connecting creates it)."""
        path = sqlite_path(self.url)
        return path if path is not None and not path.exists() else None

    @property
    def dialect(self) -> str:
        """The database's name as SQLAlchemy calls it (for display, tools and benches)."""
        return self.sql.name

    @property
    def is_postgres(self) -> bool:
        """For tools and benches that seed data; the store asks :attr:`sql` instead."""
        return self.sql.name == "postgresql"

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
    def single_write(self) -> Iterator[Connection]:
        """A connection for one write the dialect makes in a single statement where it can:
        without a transaction (each statement commits on its own) on a database whose
        statements are atomic writes, else one transaction as :meth:`begin` gives."""
        if self.sql.single_statement_writes:
            with self.autocommit() as conn:
                yield conn
            return
        with self.begin() as conn:
            yield conn

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


def sqlite_path(url: URL) -> Path | None:
    """The absolute path of an SQLite file database; None for memory or another database."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.database.startswith("file:"):  # a URI filename
        return None
    return Path(url.database).resolve()


def describe(url: URL) -> str:
    """An absolute SQLite path, or the URL with its password hidden."""
    if url.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        return str(path) if path is not None else f"SQLite {url.database or ':memory:'}"
    return url.render_as_string(hide_password=True)


def _create_engine(
    url: str,
    *,
    pool_size: int,
    echo: bool,
    busy_timeout: float,
    connect_timeout: int,
    pool_timeout: float,
) -> Engine:
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout}
        engine = create_engine(url, **kwargs)
        _configure_sqlite(
            engine,
            in_memory=parsed.database in (None, "", ":memory:"),
            busy_timeout=busy_timeout,
        )
        return engine
    # No pre-ping: it would cost a round trip per transaction; pool_recycle bounds staleness,
    # and a connection found dead invalidates the pool's older ones (so recovery is automatic).
    kwargs.update(
        pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, pool_timeout=pool_timeout,
        connect_args={"connect_timeout": connect_timeout},
    )  # fmt: skip
    return create_engine(url, **kwargs)


def _configure_sqlite(engine: Engine, *, in_memory: bool, busy_timeout: float) -> None:
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
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Readers take no lock up front: in WAL mode they never block the writer.
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")
