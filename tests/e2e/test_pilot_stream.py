"""`GET /api/interventions/stream` from real `chameleon serve` processes.

Events are published as the engine publishes them (``store.pilot_events.publish`` in a
transaction) by this test process, and read over HTTP with httpx streaming. A stream sends
its first chunk (the ``retry:`` hint) once it is subscribed, so an event published after that
chunk must reach it. Waiting is bounded by counting heartbeats (the servers send one every
``HEARTBEAT`` seconds): a hang guard, not a measured speed.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from chameleon_workflow.api.stream import RETRY_MS, prune_events
from chameleon_workflow.domain.enums import ActorType
from chameleon_workflow.engine.clock import utcnow
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from chameleon_workflow.store import pilot_events
from chameleon_workflow.store.listen import APPLICATION_NAME
from tests.conftest import bearer, empty_database, make_key
from tests.process import chameleon_command, free_port, server_env, stop, wait_until_up

HEARTBEAT = "0.5"
MAX_QUIET_BEATS = 60  # heartbeats without the awaited event before a test gives up
STOP_SECONDS = 30  # an upper bound for a server to exit, not a measured speed


@dataclass
class Frame:
    """One block of the stream: an event, or comments and a retry hint."""

    id: int | None = None
    event: str | None = None
    data: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> Any:
        import json

        assert self.data is not None
        return json.loads(self.data)


class Reader:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()

    def frame(self) -> Frame | None:
        """The next block, None at the end of the stream."""
        f = Frame()
        started = False
        for line in self._lines:
            if line == "":
                if started:
                    return f
                continue
            started = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                f.comments.append(value)
            elif name == "id":
                f.id = int(value)
            elif name == "event":
                f.event = value
            elif name == "data":
                f.data = value if f.data is None else f"{f.data}\n{value}"
            elif name == "retry":
                f.retry = int(value)
        return f if started else None

    def connected(self) -> Frame:
        first = self.frame()
        assert first is not None and first.retry == RETRY_MS, first
        assert "connected" in first.comments
        return first

    def event(self) -> Frame:
        """The next event (heartbeats skipped; at most MAX_QUIET_BEATS of them)."""
        for _ in range(MAX_QUIET_BEATS):
            f = self.frame()
            assert f is not None, "the stream ended"
            if f.event is not None:
                return f
            assert f.comments == ["keep-alive"], f
        pytest.fail(f"no event after {MAX_QUIET_BEATS} heartbeats")


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def server(env: dict[str, str], log: Path) -> Iterator[Server]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [chameleon_command(), "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, proc, log)
        yield Server(base, proc, log)
    finally:
        stop(proc)


def stopped(srv: Server) -> None:
    """The server exited after a complete shutdown (uvicorn re-raises the SIGTERM it caught,
    so the exit status is that signal's)."""
    assert srv.proc.wait(timeout=STOP_SECONDS) in (0, -signal.SIGTERM)
    log = srv.log.read_text()
    assert "Application shutdown complete" in log, log
    assert "Traceback" not in log, log


@contextmanager
def open_stream(
    base: str, key: str, *, last_event_id: int | None = None, **params: str
) -> Iterator[Reader]:
    headers = bearer(key)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    timeout = httpx.Timeout(10.0, read=30.0)
    with httpx.Client(base_url=base, timeout=timeout) as client:
        with client.stream(
            "GET", "/api/interventions/stream", headers=headers, params=params
        ) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            yield Reader(response)


def publish(engine: Engine, kind: str, instance_id: uuid.UUID | None = None, **payload: Any) -> int:
    with engine.db.begin() as conn:
        return pilot_events.publish(
            conn, kind, payload, now=utcnow(), instance_id=instance_id, uow_id=uuid.uuid4()
        )


@dataclass
class Setup:
    env: dict[str, str]
    engine: Engine
    admin: str
    settings: Settings


@pytest.fixture
def sqlite_setup(tmp_path: Path, sqlite_template: Path) -> Iterator[Setup]:
    path = tmp_path / "chameleon.db"
    path.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{path}"
    yield from _setup(url)


def _setup(url: str, **more: str) -> Iterator[Setup]:
    env = server_env(url, CHAMELEON_PILOT_STREAM_HEARTBEAT_SECONDS=HEARTBEAT, **more)
    settings = Settings(database_url=url, scheduler_enabled=False)
    engine = Engine(settings)
    try:
        yield Setup(env, engine, make_key(settings), settings)
    finally:
        engine.close()


@pytest.fixture
def sqlite_server(sqlite_setup: Setup, tmp_path: Path) -> Iterator[tuple[Setup, Server]]:
    with server(sqlite_setup.env, tmp_path / "server.log") as s:
        yield sqlite_setup, s


# --- refused requests first ---------------------------------------------------------------


def test_the_stream_needs_a_key_with_the_read_right(sqlite_server: tuple[Setup, Server]) -> None:
    setup, srv = sqlite_server
    url = f"{srv.base}/api/interventions/stream"
    missing = httpx.get(url, timeout=10)
    assert missing.status_code == 401, missing.text
    assert missing.json()["error"] == "Unauthenticated"

    actor_id = setup.engine.instances.create_actor("agent", ActorType.AI_AGENT)
    actor_key = make_key(setup.settings, "actor", actor_id)
    refused = httpx.get(url, headers=bearer(actor_key), timeout=10)
    assert refused.status_code == 403, refused.text
    assert refused.json()["details"]["needed"] == "read"

    viewer = make_key(setup.settings, "viewer")
    with open_stream(srv.base, viewer) as reader:
        reader.connected()


def test_bad_last_event_id_and_instance_id_are_refused(
    sqlite_server: tuple[Setup, Server],
) -> None:
    setup, srv = sqlite_server
    url = f"{srv.base}/api/interventions/stream"
    for bad in ("abc", "-1", "1.5", "²", "9" * 20):
        answer = httpx.get(
            url, headers={**bearer(setup.admin), "Last-Event-ID": bad.encode()}, timeout=10
        )
        assert answer.status_code == 422, (bad, answer.text)
        assert "Last-Event-ID" in answer.json()["message"]
    answer = httpx.get(url, params={"instance_id": "nope"}, headers=bearer(setup.admin), timeout=10)
    assert answer.status_code == 422, answer.text


# --- delivery ---------------------------------------------------------------------------


def test_a_new_stream_gets_only_new_events(sqlite_server: tuple[Setup, Server]) -> None:
    setup, srv = sqlite_server
    publish(setup.engine, pilot_events.INSTANCE_PAUSED, reason="before the stream")
    instance = uuid.uuid4()
    with open_stream(srv.base, setup.admin) as reader:
        reader.connected()
        new_id = publish(
            setup.engine, pilot_events.INTERVENTION_CREATED, instance, title="Approve?"
        )
        got = reader.event()
    assert (got.id, got.event) == (new_id, "intervention.created")
    data = got.json()
    assert data["id"] == new_id
    assert data["kind"] == "intervention.created"
    assert data["instance_id"] == str(instance)
    assert data["payload"] == {"title": "Approve?"}
    assert data["uow_id"] and data["at"]
    assert data["intervention_id"] is None


def test_last_event_id_replays_what_followed_then_goes_live(
    sqlite_server: tuple[Setup, Server],
) -> None:
    setup, srv = sqlite_server
    e = setup.engine
    first = publish(e, pilot_events.INTERVENTION_CREATED, n=1)
    second = publish(e, pilot_events.INTERVENTION_RESOLVED, n=2)
    third = publish(e, pilot_events.INTERVENTION_EXPIRED, n=3)
    with open_stream(srv.base, setup.admin, last_event_id=first) as reader:
        reader.connected()
        replayed = [reader.event(), reader.event()]
        fourth = publish(e, pilot_events.INSTANCE_RESUMED, n=4)
        live = reader.event()
    assert [(f.id, f.event, f.json()["payload"]["n"]) for f in replayed] == [
        (second, "intervention.resolved", 2),
        (third, "intervention.expired", 3),
    ]
    assert (live.id, live.event, live.json()["payload"]) == (fourth, "instance.resumed", {"n": 4})


def test_the_instance_filter_passes_only_that_instances_events(
    sqlite_server: tuple[Setup, Server],
) -> None:
    setup, srv = sqlite_server
    mine, other = uuid.uuid4(), uuid.uuid4()
    e = setup.engine
    start = publish(e, pilot_events.INSTANCE_PAUSED, other)
    replay_mine = publish(e, pilot_events.INSTANCE_PAUSED, mine)
    publish(e, pilot_events.INSTANCE_RESUMED, other)
    with open_stream(srv.base, setup.admin, last_event_id=start, instance_id=str(mine)) as reader:
        reader.connected()
        replayed = reader.event()
        publish(e, pilot_events.INTERVENTION_CREATED, other)
        publish(e, pilot_events.INTERVENTION_CREATED)  # no instance
        live_mine = publish(e, pilot_events.INSTANCE_RESUMED, mine)
        live = reader.event()
    assert (replayed.id, replayed.json()["instance_id"]) == (replay_mine, str(mine))
    assert (live.id, live.json()["instance_id"]) == (live_mine, str(mine))


def test_a_quiet_stream_sends_heartbeats(sqlite_server: tuple[Setup, Server]) -> None:
    setup, srv = sqlite_server
    with open_stream(srv.base, setup.admin) as reader:
        reader.connected()
        beat = reader.frame()
    assert beat is not None and beat.comments == ["keep-alive"] and beat.event is None


def test_a_stream_ends_cleanly_when_the_server_stops(sqlite_server: tuple[Setup, Server]) -> None:
    setup, srv = sqlite_server
    with open_stream(srv.base, setup.admin) as reader:
        reader.connected()
        srv.proc.terminate()  # SIGTERM, as a process manager stops it
        rest = []
        while (f := reader.frame()) is not None:  # the chunked body ends: no transport error
            rest.append(f)
            assert len(rest) <= MAX_QUIET_BEATS
    stopped(srv)
    assert all(f.event is None for f in rest)


# --- retention --------------------------------------------------------------------------


def test_pruning_forgets_old_events_but_keeps_the_newest(db_url: str) -> None:
    engine = Engine(Settings(database_url=db_url, scheduler_enabled=False))
    try:
        now = utcnow()
        with engine.db.begin() as conn:
            old = [
                pilot_events.publish(
                    conn, pilot_events.INSTANCE_PAUSED, {}, now=now - timedelta(hours=h)
                )
                for h in (50, 30)
            ]
            recent = pilot_events.publish(conn, pilot_events.INSTANCE_RESUMED, {}, now=now)
        assert prune_events(engine.db, now - timedelta(hours=24)) == 2
        with engine.db.connect() as conn:
            assert [r["id"] for r in pilot_events.after(conn, 0, 10)] == [recent]
        # Everything is old now: the newest row stays, so its id is never handed out again.
        assert prune_events(engine.db, now + timedelta(hours=1)) == 0
        with engine.db.begin() as conn:
            after = pilot_events.publish(conn, pilot_events.INSTANCE_PAUSED, {}, now=now)
        assert after > recent > max(old)
    finally:
        engine.close()


# --- PostgreSQL: several processes --------------------------------------------------------


@pytest.fixture
def pg_setup(pg_url: str) -> Iterator[Setup]:
    empty_database(pg_url)
    # No polling and no safety sweep during the test: only NOTIFY (or the catch-up read when
    # the LISTEN connection is made) can bring an event to a stream.
    yield from _setup(
        pg_url,
        CHAMELEON_PILOT_STREAM_SWEEP_SECONDS="3600",
        CHAMELEON_PILOT_STREAM_POLL_SECONDS="3600",
    )


def _listeners(engine: Engine) -> list[int]:
    with engine.db.connect() as conn:
        return list(
            conn.scalars(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
                    "AND datname = current_database()"
                ),
                {"name": APPLICATION_NAME},
            )
        )


def _wait_for(check: Any, what: str) -> Any:
    deadline = time.monotonic() + 30  # an upper bound for polling, not a measured speed
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"still waiting for {what}")


@pytest.mark.postgres
def test_events_reach_streams_on_two_server_processes(pg_setup: Setup, tmp_path: Path) -> None:
    setup = pg_setup
    with (
        server(setup.env, tmp_path / "a.log") as a,
        server(setup.env, tmp_path / "b.log") as b,
        open_stream(a.base, setup.admin) as on_a,
        open_stream(b.base, setup.admin) as on_b,
    ):
        on_a.connected()
        on_b.connected()
        # One LISTEN connection per process, however many streams it serves.
        _wait_for(lambda: len(_listeners(setup.engine)) == 2, "both processes to LISTEN")
        event_id = publish(setup.engine, pilot_events.INSTANCE_PAUSED, reason="kill switch")
        got_a, got_b = on_a.event(), on_b.event()
        assert (got_a.id, got_a.event) == (event_id, "instance.paused")
        assert got_b.data == got_a.data

        # A second stream on A shares A's LISTEN connection.
        with open_stream(a.base, setup.admin) as again:
            again.connected()
            assert len(_listeners(setup.engine)) == 2
            second = publish(setup.engine, pilot_events.INSTANCE_RESUMED)
            assert again.event().id == on_a.event().id == on_b.event().id == second

        # A's stream ends when A stops (its LISTEN connection with it); B's goes on.
        a.proc.terminate()
        while on_a.frame() is not None:
            pass
        stopped(a)
        third = publish(setup.engine, pilot_events.INTERVENTION_CREATED)
        assert on_b.event().id == third
    for log in (a.log, b.log):
        assert "Traceback" not in log.read_text()


@pytest.mark.postgres
def test_the_listen_connection_comes_back_after_a_failure(pg_setup: Setup, tmp_path: Path) -> None:
    setup = pg_setup
    with server(setup.env, tmp_path / "a.log") as a, open_stream(a.base, setup.admin) as reader:
        reader.connected()
        (old_pid,) = _wait_for(lambda: _listeners(setup.engine), "the LISTEN connection")
        with setup.engine.db.connect() as conn:
            assert conn.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": old_pid})
        new_pids = _wait_for(
            lambda: [p for p in _listeners(setup.engine) if p != old_pid], "a new LISTEN"
        )
        assert len(new_pids) == 1
        event_id = publish(setup.engine, pilot_events.INTERVENTION_RESOLVED)
        got = reader.event()
    assert got.id == event_id
    assert "LISTEN connection failed" in a.log.read_text()


@pytest.mark.postgres
def test_an_event_committed_after_a_newer_one_is_still_delivered(
    pg_setup: Setup, tmp_path: Path
) -> None:
    """PostgreSQL hands out ids before commit: id n may commit after n + 1."""
    setup = pg_setup
    with server(setup.env, tmp_path / "a.log") as a, open_stream(a.base, setup.admin) as reader:
        reader.connected()
        _wait_for(lambda: _listeners(setup.engine), "the LISTEN connection")
        with setup.engine.db.begin() as slow:
            older = pilot_events.publish(
                slow, pilot_events.INTERVENTION_RESOLVED, {"slow": True}, now=utcnow()
            )
            newer = publish(setup.engine, pilot_events.INTERVENTION_CREATED)
            first = reader.event()
        second = reader.event()
    assert newer > older
    assert (first.id, second.id) == (newer, older)
    assert second.json()["payload"] == {"slow": True}
