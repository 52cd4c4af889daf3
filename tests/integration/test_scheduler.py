"""The in-server scheduler: schedules, failures, the daily slot and leader leases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chameleon_workflow.api.app import create_app
from chameleon_workflow.domain.enums import MemoryScope
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.engine.scheduler import Scheduler, latest_slot
from chameleon_workflow.settings import Settings
from chameleon_workflow.store.maintenance import zombies
from chameleon_workflow.store.records import MaintenanceRunRecord
from tests.conftest import FakeClock, bearer, make_key
from tests.flows import Flow, fixture_text

FAST = {
    "zombie_interval_seconds": 0.1,
    "stale_token_interval_seconds": 0.1,
    "leader_lease_seconds": 1.0,
}


def scheduled(engine: Engine, job: str | None = None) -> list[MaintenanceRunRecord]:
    return [r for r in engine.maintenance.runs(job=job, limit=1000) if r.trigger == "schedule"]


async def until(check: Callable[[], bool], seconds: float = 30.0) -> float:
    """Wait (without blocking the loop) until ``check()`` holds; return the time it took.

    The default bound is slack for a loaded machine, not a speed requirement.
    """
    start = time.monotonic()
    while not await asyncio.to_thread(check):
        if time.monotonic() - start > seconds:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update=FAST)


@pytest.fixture
def real_engine(fast: Settings) -> Iterator[Engine]:
    """An engine on the real clock, as a server runs it."""
    eng = Engine(fast)
    yield eng
    eng.close()


def test_the_latest_daily_slot() -> None:
    at = datetime(2026, 3, 10, 1, 59, 59, tzinfo=UTC)
    assert latest_slot(at, 2, 0) == datetime(2026, 3, 9, 2, 0, tzinfo=UTC)
    assert latest_slot(at + timedelta(seconds=1), 2, 0) == datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    assert latest_slot(at, 0, 30) == datetime(2026, 3, 10, 0, 30, tzinfo=UTC)


def test_the_sweeps_run_on_schedule_and_are_recorded(
    engine: Engine, fast: Settings, clock: FakeClock
) -> None:
    flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 5})
    c = flow.take("Triage")
    clock.advance(301)
    scheduler = Scheduler(engine.maintenance, fast, tick_seconds=0.05)

    async def scenario() -> None:
        await scheduler.start()
        await until(lambda: flow.where(c.uow_id)[0] == "FAILED")
        await until(lambda: bool(scheduled(engine, "stale_token_sweep")))
        await scheduler.stop()

    asyncio.run(scenario())
    runs = scheduled(engine, "zombie_sweep")
    assert runs[-1].counts is not None and runs[-1].counts["reclaimed"] == 1
    assert {r.replica for r in runs} == {scheduler.replica}
    assert scheduled(engine, "memory_decay") == []  # a new database waits for 02:00 UTC
    assert engine.maintenance.leadership().leases == []  # released on stop


def test_a_failing_run_is_recorded_and_the_schedule_goes_on(
    engine: Engine, fast: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 5})
    c = flow.take("Triage")
    clock.advance(301)
    real = zombies.reclaim_batch
    calls: list[int] = []

    def flaky(*args: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return real(*args, **kw)

    monkeypatch.setattr(zombies, "reclaim_batch", flaky)
    scheduler = Scheduler(engine.maintenance, fast, tick_seconds=0.05)

    async def scenario() -> None:
        await scheduler.start()
        await until(lambda: flow.where(c.uow_id)[0] == "FAILED")
        await scheduler.stop()

    asyncio.run(scenario())
    first, *later = reversed(scheduled(engine, "zombie_sweep"))
    assert first.error == "RuntimeError: database hiccup" and first.finished_at is not None
    assert any(r.error is None and r.counts and r.counts["reclaimed"] == 1 for r in later)


def test_the_daily_decay_runs_once_when_its_slot_comes(
    engine: Engine, settings: Settings, clock: FakeClock
) -> None:
    flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 5})
    clock.now = datetime(2026, 3, 10, 1, 59, 50, tzinfo=UTC) - timedelta(days=100)
    engine.memory.write(flow.roles["Triage"], key="old", value=1, scope=MemoryScope.GLOBAL)
    clock.now = datetime(2026, 3, 10, 1, 59, 50, tzinfo=UTC)
    daily = settings.model_copy(
        update={**FAST, "zombie_interval_seconds": 3600, "stale_token_interval_seconds": 3600}
    )
    scheduler = Scheduler(engine.maintenance, daily, tick_seconds=0.05)

    async def scenario() -> None:
        await scheduler.start()
        await asyncio.sleep(0.3)
        assert scheduled(engine, "memory_decay") == []
        clock.advance(20)
        await until(lambda: bool(scheduled(engine, "memory_decay")))
        await asyncio.sleep(0.3)
        await scheduler.stop()

    asyncio.run(scenario())
    (run,) = scheduled(engine, "memory_decay")
    assert (
        run.counts is not None
        and run.counts["deleted"] == 1
        and run.parameters["retention_days"] == 90
    )


def test_the_app_lifespan_starts_and_stops_the_scheduler(fast: Settings) -> None:
    enabled = fast.model_copy(update={"scheduler_enabled": True})
    with TestClient(create_app(enabled), headers=bearer(make_key(enabled))) as client:
        scheduler = client.app.state.scheduler  # type: ignore[attr-defined]
        assert isinstance(scheduler, Scheduler)
        deadline = time.monotonic() + 5
        while len(client.get("/admin/scheduler").json()["leases"]) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        leases = client.get("/admin/scheduler").json()
        assert {lease["holder"] for lease in leases["leases"]} == {leases["replica"]}
    engine = Engine(enabled)
    try:
        assert engine.maintenance.leadership().leases == []
    finally:
        engine.close()


def test_without_the_scheduler_no_job_runs(settings: Settings) -> None:
    with TestClient(create_app(settings), headers=bearer(make_key(settings))) as client:
        assert client.app.state.scheduler is None  # type: ignore[attr-defined]
        assert client.get("/admin/maintenance-runs").json() == {"items": [], "next_cursor": None}


# --- two replicas on one database ----------------------------------------------------------------


def _leaders(schedulers: list[Scheduler], job: str) -> list[str]:
    return [s.replica for s in schedulers if s.leads(job)]


def _no_overlap(runs: list[MaintenanceRunRecord]) -> bool:
    """Runs of one job by different replicas never overlap in time."""
    ordered = sorted(runs, key=lambda r: r.started_at)
    return all(
        a.replica == b.replica or (a.finished_at is not None and a.finished_at <= b.started_at)
        for a, b in zip(ordered, ordered[1:], strict=False)
    )


def test_one_replica_leads_and_another_takes_over(fast: Settings) -> None:
    engines = [Engine(fast) for _ in range(3)]
    a, b, c = (Scheduler(e.maintenance, fast, tick_seconds=0.1) for e in engines)
    jobs = ("zombie_sweep", "stale_token_sweep", "memory_decay")

    async def scenario() -> dict[str, float]:
        await a.start()
        await until(lambda: all(a.leads(j) for j in jobs))
        await b.start()
        await asyncio.sleep(0.5)
        assert all(_leaders([a, b], j) == [a.replica] for j in jobs)
        await a.stop()  # a clean stop releases the leases at once
        handover = await until(lambda: all(b.leads(j) for j in jobs), seconds=3)
        await until(lambda: any(r.replica == b.replica for r in scheduled(engines[0])))
        await c.start()
        await b.stop(release_leases=False)  # as if b died: its leases must expire first
        takeover = await until(lambda: all(c.leads(j) for j in jobs), seconds=3)
        await until(lambda: any(r.replica == c.replica for r in scheduled(engines[0])))
        await c.stop()
        return {"handover": handover, "takeover": takeover}

    try:
        times = asyncio.run(scenario())
        runs = scheduled(engines[0], "zombie_sweep")
    finally:
        for e in engines:
            e.close()
    # A clean stop releases the leases: the next tick takes over (slack for a loaded CI box).
    assert times["handover"] <= fast.leader_lease_seconds + 1.5
    assert times["takeover"] <= fast.leader_lease_seconds + 1.5  # expiry, one tick, slack
    assert {r.replica for r in runs} == {a.replica, b.replica, c.replica}
    assert _no_overlap(runs)
