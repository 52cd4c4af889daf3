"""Sweeps under concurrency and faults: racing sweeps, racing submits, a sweep killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.errors import LeaseLost
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.engine.maintenance import MaintenanceService, RunOutcome
from chameleon_workflow.settings import Settings
from chameleon_workflow.store import uows
from chameleon_workflow.store.tables import InteractionLog, Uow
from tests.conftest import FakeClock, empty_database
from tests.flows import Flow, fixture_text

L = InteractionLog.__table__
U = Uow.__table__
ROOT = Path(__file__).resolve().parents[2]


def seed_zombies(flow: Flow, n: int, *, silent_since: datetime) -> None:
    """``n`` UOWs leased by Triage whose last heartbeat is ``silent_since`` (one bulk insert)."""
    topo = flow.engine.topologies.of_instance(flow.instance_id)
    t = silent_since
    rows = [
        {
            "id": uuid.uuid4(), "instance_id": flow.instance_id, "parent_id": None,
            "status": "ACTIVE", "current_interaction_id": topo.interaction_ids["Inbox"],
            "current_role_id": flow.roles["Triage"], "child_count": 0, "finished_child_count": 0,
            "created_at": t, "updated_at": t, "entered_at": t, "lease_id": uuid.uuid4(),
            "lease_holder_id": flow.actor, "leased_at": t, "last_heartbeat": t, "reclaim_count": 0,
        }
        for _ in range(n)
    ]  # fmt: skip
    with flow.engine.db.begin() as conn:
        conn.execute(sa.insert(U), rows)


def tally(engine: Engine) -> dict[str, Any]:
    """Reclaimed UOWs, reclaim log rows, and UOWs with other than one log row per reclaim."""
    with engine.db.connect() as conn:
        reclaimed = conn.scalar(sa.select(sa.func.count()).where(U.c.reclaim_count > 0))
        logs = conn.scalar(sa.select(sa.func.count()).where(L.c.event == "reclaim"))
        per_uow = sa.select(L.c.uow_id, sa.func.count().label("n")).where(L.c.event == "reclaim")
        per_uow = per_uow.group_by(L.c.uow_id).subquery()
        logged = conn.scalar(sa.select(sa.func.count()).select_from(per_uow))
        twice = conn.scalar(sa.select(sa.func.count()).where(per_uow.c.n != 1))
        torn = conn.scalar(
            sa.select(sa.func.count()).where(
                U.c.status == "ACTIVE", sa.or_(U.c.lease_id.is_(None), U.c.reclaim_count > 0)
            )
        )
    return {
        "reclaimed": reclaimed,
        "logs": logs,
        "logged_uows": logged,
        "twice": twice,
        "torn": torn,
    }


@pytest.mark.postgres
def test_two_sweeps_together_reclaim_each_of_10000_zombies_exactly_once(pg_url: str) -> None:
    empty_database(pg_url)
    settings = Settings(database_url=pg_url, scheduler_enabled=False)
    engines = [Engine(settings) for _ in range(2)]
    try:
        flow = Flow(engines[0], fixture_text("routing_workflow.yml"), {"amount": 1})
        seed_zombies(flow, 10_000, silent_since=datetime.now(UTC) - timedelta(hours=1))
        results: list[RunOutcome] = []
        start = threading.Barrier(2)

        def sweep(engine: Engine) -> None:
            start.wait()
            results.append(engine.maintenance.zombie_sweep(batch_size=500))

        threads = [threading.Thread(target=sweep, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r.counts["reclaimed"] for r in results) == 10_000
        assert tally(engines[0]) == {
            "reclaimed": 10_000, "logs": 10_000, "logged_uows": 10_000, "twice": 0, "torn": 0,
        }  # fmt: skip
        with engines[0].db.connect() as conn:
            states = conn.execute(sa.select(U.c.status, U.c.reclaim_count).distinct()).all()
        assert set(states) == {("FAILED", 1), ("PENDING", 0)}  # the flow's own first UOW waits
    finally:
        for e in engines:
            e.close()


def test_a_submit_racing_a_sweep_lands_or_gets_409_never_both(
    engine: Engine, settings: Settings, clock: FakeClock
) -> None:
    flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 1})
    for _ in range(29):
        flow.genesis(amount=1)
    leases = [flow.take("Triage") for _ in range(30)]
    clock.advance(301)
    # A short pause between one-UOW batches interleaves the sweep with the submits.
    paced = settings.model_copy(update={"maintenance_batch_pause_seconds": 0.005})
    sweeper = MaintenanceService(engine.db, paced, clock)
    outcome: dict[uuid.UUID, str] = {}
    start = threading.Barrier(2)

    def submit_all() -> None:
        start.wait()
        for c in leases:
            try:
                flow.submit(c, amount=1)
                outcome[c.uow_id] = "landed"
            except LeaseLost:
                outcome[c.uow_id] = "409"

    def sweep() -> None:
        start.wait()
        sweeper.zombie_sweep(batch_size=1)

    threads = [threading.Thread(target=submit_all), threading.Thread(target=sweep)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in leases:
        u = flow.uow(c.uow_id)
        reclaims = [
            t for t in engine.instances.history(c.uow_id).transitions if t.event == "reclaim"
        ]
        if outcome[c.uow_id] == "landed":
            assert (u.uow.status, u.interaction, u.uow.reclaim_count, reclaims) == (
                "PENDING",
                "SmallQ",
                0,
                [],
            )
        else:
            assert (u.uow.status, u.interaction, u.uow.reclaim_count) == ("FAILED", "Timeouts", 1)
            assert len(reclaims) == 1


def test_a_failure_inside_a_batch_leaves_only_whole_batches(
    engine: Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 1})
    seed_zombies(flow, 25, silent_since=clock.now)
    clock.advance(301)
    real = uows.refresh_finished_children
    calls: list[int] = []

    def crash_in_third_batch(*args: Any, **kw: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("power cut")
        real(*args, **kw)

    monkeypatch.setattr(uows, "refresh_finished_children", crash_in_third_batch)
    with pytest.raises(RuntimeError, match="power cut"):
        engine.maintenance.zombie_sweep(batch_size=10)
    assert tally(engine) == {"reclaimed": 20, "logs": 20, "logged_uows": 20, "twice": 0, "torn": 0}
    (run,) = engine.maintenance.runs()
    assert (
        run.error == "RuntimeError: power cut"
        and run.counts is not None
        and run.counts["reclaimed"] == 20
    )
    monkeypatch.setattr(uows, "refresh_finished_children", real)
    assert engine.maintenance.zombie_sweep(batch_size=10).counts["reclaimed"] == 5
    assert tally(engine)["logged_uows"] == 25


_SWEEPER = textwrap.dedent(
    """
    import sys
    from chameleon_workflow.engine.core import Engine
    from chameleon_workflow.settings import Settings
    settings = Settings(database_url=sys.argv[1], scheduler_enabled=False,
                        maintenance_batch_pause_seconds=0.02)
    Engine(settings).maintenance.zombie_sweep(batch_size=50)
    """
)


def test_a_sweep_killed_mid_run_leaves_only_whole_batches(settings: Settings) -> None:
    engine = Engine(settings)
    try:
        flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 1})
        seed_zombies(flow, 3000, silent_since=datetime.now(UTC) - timedelta(hours=1))
        child = subprocess.Popen(
            [sys.executable, "-c", _SWEEPER, settings.database_url],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while tally(engine)["reclaimed"] < 200 and child.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.005)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        after_kill = tally(engine)
        assert 0 < after_kill["reclaimed"] < 3000
        assert after_kill["reclaimed"] % 50 == 0
        assert after_kill == after_kill | {"twice": 0, "torn": 0}
        assert after_kill["logs"] == after_kill["logged_uows"] == after_kill["reclaimed"]
        engine.maintenance.zombie_sweep()
        assert tally(engine) == {
            "reclaimed": 3000, "logs": 3000, "logged_uows": 3000, "twice": 0, "torn": 0,
        }  # fmt: skip
    finally:
        engine.close()
