"""A first-come, first-served lock for SQLite's single writer, within one process.

SQLite admits one writer at a time; a writer that finds the database locked polls with
growing sleeps (up to 100 ms a try), so under a steady stream of short transactions a long
one (a maintenance batch) can starve and short ones see long tails. Queuing the process's
writers in arrival order makes every writer wait for at most the transactions ahead of it.
Other processes on the same file still meet SQLite's own busy handling.
"""

from __future__ import annotations

import threading


class WriterQueue:
    """A ticket lock; re-entrant for the thread that holds it."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a writer slot this thread does not hold")
            self._depth -= 1
            if self._depth:
                return
            self._owner = None
            self._serving += 1
            self._cond.notify_all()
