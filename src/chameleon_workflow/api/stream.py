"""The pilot's live events (``GET /api/interventions/stream``): one broadcaster per process.

Events are rows of ``pilot_events``, written in the transaction of the change they announce
(``store.pilot_events.publish``). A process reads new rows once and hands them to every open
stream of that process; streams never hold a database connection.

What wakes the reader:

* PostgreSQL: one ``LISTEN`` connection per process (``store.listen``) on
  :data:`~chameleon_workflow.store.pilot_events.CHANNEL`; a notification is only a wake-up,
  the rows are read by id. A slower sweep is the safety net for a lost notification, and
  while the connection is down (it reconnects with back-off) the reader polls.
* SQLite: polling, every ``pilot_stream_poll_seconds``.

The reader keeps a low-water mark (every id at or below it was delivered or given up). On
PostgreSQL ids are taken before commit, so id 10 may commit after id 11: a missing id is
waited for :data:`GAP_SECONDS` (it may belong to a transaction still running, or one that
rolled back) and delivered late if it appears. The broadcaster only reads while a stream is
open; it starts afresh from the newest event after an idle spell.

Server shutdown: uvicorn waits for open responses *before* the app's lifespan ends, so a
stream would hold the server up forever. :meth:`Broadcaster.watch_exit` chains the server's
SIGINT/SIGTERM handlers to end every stream first (a client reconnects, with
``Last-Event-ID``, to another process).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from datetime import datetime, timedelta
from types import FrameType
from typing import Any

from anyio import to_thread

from ..domain.errors import DatabaseUnavailable
from ..engine.core import Engine
from ..store import faults, pilot_events
from ..store.database import Database
from ..store.listen import Listener, ListenFailed
from .encode import plain

log = logging.getLogger(__name__)

RETRY_MS = 3000  # the "retry:" hint: how long a disconnected EventSource waits
BATCH = 500  # rows per read
MAX_ROWS = 5000  # rows per wake-up (more: read again at once)
GAP_SECONDS = 30.0  # how long a missing id is waited for
MAX_GAP_IDS = 10_000  # a jump of more missing ids than this is given up at once
QUEUE_SIZE = 1000  # events waiting for one slow client before its stream ends (it replays)
PING_SECONDS = 15.0  # a quiet LISTEN connection is checked this often
BACKOFF_MAX_SECONDS = 30.0  # the longest wait between two attempts to reconnect or read
PRUNE_FIRST_SECONDS = 60.0
PRUNE_EVERY_SECONDS = 3600.0

Event = dict[str, Any]


class Subscription:
    """One open stream: the events meant for it, waiting to be sent."""

    def __init__(self, instance_id: uuid.UUID | None) -> None:
        self.instance_id = instance_id
        # Ids at or below this never come through the queue (read back from the table).
        self.floor: int | None = None
        self.pending: deque[Event] = deque()
        self.signal = asyncio.Event()
        self.done = False  # the stream ends once pending is sent

    def wants(self, event: Event) -> bool:
        return self.instance_id is None or event["instance_id"] == self.instance_id

    def offer(self, event: Event) -> bool:
        """Queue ``event``; False if the client is too far behind (the stream then ends)."""
        if len(self.pending) >= QUEUE_SIZE:
            self.end()
            return False
        self.pending.append(event)
        self.signal.set()
        return True

    def end(self) -> None:
        self.done = True
        self.signal.set()


class Broadcaster:
    """Reads new events for every open stream of this process (see the module's text)."""

    def __init__(self, engine: Engine) -> None:
        s = engine.settings
        self._db = engine.db
        self._clock = engine.clock
        self._retention = timedelta(hours=s.pilot_events_retention_hours)
        self.heartbeat_seconds = s.pilot_stream_heartbeat_seconds
        self._poll = s.pilot_stream_poll_seconds
        self._sweep = s.pilot_stream_sweep_seconds
        self._connect_timeout = s.db_connect_timeout_seconds
        self._listens = engine.db.sql.notifies
        self._subs: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._cursor: int | None = None  # the low-water mark; None: idle
        self._seen: set[int] = set()  # delivered ids above the mark
        self._gaps: dict[int, float] = {}  # missing ids above the mark: since when
        self._listening = False
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._previous: dict[int, Any] = {}
        self.closed = False

    # --- streams ------------------------------------------------------------------------

    async def subscribe(self, instance_id: uuid.UUID | None) -> Subscription:
        """A new stream's subscription, once events after this moment will reach it."""
        if self.closed:
            raise DatabaseUnavailable("this server is stopping: reconnect in a moment")
        self._start()
        sub = Subscription(instance_id)
        sub.floor = self._cursor
        self._subs.add(sub)
        self._wake.set()
        try:
            await asyncio.wait_for(self._ready.wait(), self._connect_timeout + 5)
        except TimeoutError:
            self._subs.discard(sub)
            raise DatabaseUnavailable(
                "the live stream cannot read the database now: retry later"
            ) from None
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        if not self._subs:
            self._wake.set()  # the reader goes idle

    async def events(self, sub: Subscription, last_event_id: int | None) -> AsyncIterator[str]:
        """The text of one stream: the retry hint, the replay after ``last_event_id`` (if
        given), then live events and heartbeats until the client leaves or the server stops."""
        try:
            yield f"retry: {RETRY_MS}\n: connected\n\n"
            replayed: set[int] = set()
            if last_event_id is not None:
                async for event in self._replay(sub, last_event_id):
                    if sub.floor is not None and event["id"] > sub.floor:
                        replayed.add(event["id"])  # may come through the queue as well
                    if sub.wants(event):
                        yield frame(event)
            while True:
                while sub.pending:
                    event = sub.pending.popleft()
                    if event["id"] in replayed:
                        replayed.discard(event["id"])
                        continue
                    yield frame(event)
                if sub.done:
                    return
                sub.signal.clear()
                try:
                    await asyncio.wait_for(sub.signal.wait(), self.heartbeat_seconds)
                except TimeoutError:
                    yield ": keep-alive\n\n"
        finally:
            self.unsubscribe(sub)

    async def _replay(self, sub: Subscription, after: int) -> AsyncIterator[Event]:
        position = after
        while not sub.done:
            try:
                page = await to_thread.run_sync(_read_page, self._db, position)
            except faults.FAULTS as exc:
                log.warning("pilot stream: replay stopped, the database failed: %s", exc)
                sub.end()
                return
            for row in page:
                yield row
            if len(page) < BATCH:
                return
            position = page[-1]["id"]

    # --- the reader ---------------------------------------------------------------------

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self._spawn(self._read_loop())
        if self._listens:
            self._spawn(self._listen_loop())

    def start_pruning(self) -> None:
        """Prune events older than the retention now and then (servers with the scheduler)."""
        self._spawn(self._prune_loop())

    def _spawn(self, coro: Any) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro))

    async def _read_loop(self) -> None:
        failures = 0
        while not self.closed:
            if not self._subs:
                self._go_idle()
                await self._wake.wait()
                continue
            try:
                if self._cursor is None:
                    cursor = await to_thread.run_sync(_latest_id, self._db)
                    self._cursor = cursor
                    for sub in self._subs:
                        if sub.floor is None:
                            sub.floor = cursor
                    self._ready.set()
                self._wake.clear()
                rows = await to_thread.run_sync(_read_new, self._db, self._cursor)
                self._deliver(rows)
                failures = 0
            except faults.FAULTS as exc:
                failures += 1
                log.warning("pilot stream: cannot read new events: %s", exc)
                await asyncio.sleep(min(self._poll * 2**failures, BACKOFF_MAX_SECONDS))
                continue
            if len(rows) >= MAX_ROWS:
                continue
            wait = self._sweep if self._listening else self._poll
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    def _go_idle(self) -> None:
        self._cursor = None
        self._ready.clear()
        self._seen.clear()
        self._gaps.clear()
        self._wake.clear()

    def _deliver(self, rows: list[Event]) -> None:
        """Hand the rows not yet delivered to the streams; move the low-water mark."""
        assert self._cursor is not None
        for row in rows:
            if row["id"] in self._seen or row["id"] <= self._cursor:
                continue
            self._seen.add(row["id"])
            self._gaps.pop(row["id"], None)  # it committed late
            for sub in list(self._subs):
                if sub.wants(row) and not sub.offer(row):
                    self._subs.discard(sub)
        top = max(self._seen, default=self._cursor)
        if top - self._cursor - len(self._seen) > MAX_GAP_IDS:
            self._gaps.clear()  # a jump (a sequence restart, a lost cache): no use waiting
            self._cursor = top
            self._seen.clear()
            return
        now = time.monotonic()
        mark = self._cursor
        while mark < top:
            following = mark + 1
            if following in self._seen:
                self._seen.discard(following)
            elif now - self._gaps.setdefault(following, now) >= GAP_SECONDS:
                del self._gaps[following]
            else:
                break
            mark = following
        self._cursor = mark
        for missing in range(mark + 1, top):
            if missing not in self._seen:
                self._gaps.setdefault(missing, now)

    async def _listen_loop(self) -> None:
        backoff = 1.0
        while not self.closed:
            listener = Listener(
                self._db, pilot_events.CHANNEL, connect_timeout=self._connect_timeout
            )
            try:
                await listener.open()
            except ListenFailed as exc:
                log.warning("pilot stream: cannot LISTEN (retrying in %.0fs): %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)
                continue
            try:
                self._listening = True
                backoff = 1.0
                self._wake.set()  # catch up on what committed while nobody listened
                while not self.closed:
                    async for _ in listener.wakeups(PING_SECONDS):
                        self._wake.set()
            except ListenFailed as exc:
                log.warning("pilot stream: the LISTEN connection failed, reconnecting: %s", exc)
            finally:
                self._listening = False
                await listener.close()
            if not self.closed:
                self._wake.set()  # poll meanwhile
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX_SECONDS)

    async def _prune_loop(self) -> None:
        await asyncio.sleep(PRUNE_FIRST_SECONDS)
        while not self.closed:
            cutoff = self._clock() - self._retention
            try:
                count = await to_thread.run_sync(prune_events, self._db, cutoff)
                if count:
                    log.info("pilot stream: pruned %d events older than %s", count, cutoff)
            except faults.FAULTS as exc:
                log.warning("pilot stream: pruning failed: %s", exc)
            await asyncio.sleep(PRUNE_EVERY_SECONDS)

    # --- shutdown -----------------------------------------------------------------------

    def watch_exit(self) -> None:
        """End every stream as soon as the server is told to stop (SIGINT/SIGTERM).

        Chains the handlers the server installed (uvicorn's, in the main thread); nothing is
        changed where there is no such handler (a test client, another thread)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(
                signum: int, frame: FrameType | None, previous: Callable[..., Any] = previous
            ) -> None:
                loop.call_soon_threadsafe(self.stop_streams)
                previous(signum, frame)

            self._previous[sig] = (previous, handler)
            signal.signal(sig, handler)

    def stop_streams(self) -> None:
        """Refuse new streams and end the open ones (their clients reconnect elsewhere)."""
        self.closed = True
        self._wake.set()
        for sub in list(self._subs):
            sub.end()

    async def close(self) -> None:
        """At the end of the lifespan: end the streams, the reader and the LISTEN connection."""
        self.stop_streams()
        if threading.current_thread() is threading.main_thread():
            for sig, (previous, handler) in self._previous.items():
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, previous)
        self._previous.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


def frame(event: Event) -> str:
    """One event in the stream's format: ``id``, ``event`` and a one-line JSON ``data``."""
    data = json.dumps(plain(event), separators=(",", ":"), ensure_ascii=False)
    return f"id: {event['id']}\nevent: {event['kind']}\ndata: {data}\n\n"


def prune_events(db: Database, before: datetime) -> int:
    """Delete events older than ``before`` (never the newest one, see the store)."""
    with db.begin() as conn:
        return pilot_events.prune(conn, before)


def _latest_id(db: Database) -> int:
    with db.connect() as conn:
        return pilot_events.latest_id(conn)


def _read_page(db: Database, after: int) -> list[Event]:
    with db.connect() as conn:
        return [_event(r) for r in pilot_events.after(conn, after, BATCH)]


def _read_new(db: Database, after: int) -> list[Event]:
    rows: list[Event] = []
    with db.connect() as conn:
        while len(rows) < MAX_ROWS:
            page = pilot_events.after(conn, after, BATCH)
            rows.extend(_event(r) for r in page)
            if len(page) < BATCH:
                break
            after = page[-1]["id"]
    return rows


def _event(row: dict[str, Any]) -> Event:
    return {
        "id": int(row["id"]),
        "kind": row["kind"],
        "at": row["at"],
        "instance_id": row["instance_id"],
        "uow_id": row["uow_id"],
        "intervention_id": row["intervention_id"],
        "payload": row["payload"],
    }
