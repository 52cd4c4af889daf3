"""Being woken by other processes: PostgreSQL ``LISTEN`` on a channel.

The only database-specific part of the pilot's live stream. Whether the database can do it
at all is the dialect's to say (``db.sql.notifies``); where it cannot (SQLite), readers poll.
A notification is only a wake-up: the rows it announces are read by id.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import psycopg
from psycopg import sql

from .database import Database

APPLICATION_NAME = "chameleon-pilot-stream"  # the LISTEN connection in pg_stat_activity


class ListenFailed(Exception):
    """The LISTEN connection could not be opened, or broke."""


class Listener:
    """One autocommit connection listening on ``channel`` (open it, then iterate)."""

    def __init__(self, db: Database, channel: str, *, connect_timeout: int) -> None:
        self._args = _connect_args(db, connect_timeout)
        self._channel = channel
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def open(self) -> None:
        try:
            self._conn = await psycopg.AsyncConnection.connect(**self._args, autocommit=True)
            await self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        except psycopg.Error as exc:
            await self.close()
            raise ListenFailed(str(exc)) from exc

    async def wakeups(self, quiet_seconds: float) -> AsyncIterator[None]:
        """One item per notification; after ``quiet_seconds`` without any, the connection is
        checked and the iteration ends (iterate again to go on)."""
        assert self._conn is not None, "open() first"
        try:
            async with aclosing(self._conn.notifies(timeout=quiet_seconds)) as notes:
                async for _ in notes:
                    yield None
            await self._conn.execute("SELECT 1")  # a quiet spell: is the server still there?
        except psycopg.Error as exc:
            raise ListenFailed(str(exc)) from exc

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close()
            except psycopg.Error:
                pass


def _connect_args(db: Database, connect_timeout: int) -> dict[str, Any]:
    """psycopg's connection arguments for the engine's database URL."""
    url = db.url
    args: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    args.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    args.setdefault("connect_timeout", connect_timeout)
    args["application_name"] = APPLICATION_NAME
    return args
