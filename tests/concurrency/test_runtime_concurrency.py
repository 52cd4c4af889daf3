"""Concurrent checkouts and drains on real databases, and a process killed mid-transaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from chameleon_workflow.engine.checkout import Checkout
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from chameleon_workflow.store.tables import InteractionLog, Uow, UowAttribute
from tests.flows import Flow

L = InteractionLog.__table__
U = Uow.__table__
A = UowAttribute.__table__
THREE_STEP = (Path(__file__).resolve().parents[2] / "bench" / "three_step.yml").read_text()
STEPS = ("Step1", "Step2", "Step3")


@pytest.fixture
def pg_engine(pg_url: str) -> Engine:
    from tests.conftest import empty_database

    empty_database(pg_url)
    eng = Engine(Settings(database_url=pg_url, db_pool_size=20, scheduler_enabled=False))
    yield eng
    eng.close()


@pytest.mark.postgres
def test_sixteen_concurrent_checkouts_of_one_uow_lease_it_once(pg_engine: Engine) -> None:
    flow = Flow(pg_engine, THREE_STEP)
    actors = [flow.new_actor(f"a{i}") for i in range(16)]
    barrier = threading.Barrier(16)
    results: list[Checkout | None] = []
    errors: list[BaseException] = []

    def attempt(actor: uuid.UUID) -> None:
        barrier.wait()
        try:
            results.append(flow.checkout("Step1", actor))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(a,)) for a in actors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    leases = [r for r in results if r is not None]
    assert len(results) == 16 and len(leases) == 1
    assert flow.uow(flow.first_uow).uow.lease_holder_id in actors
    checkouts = flow.scalar("SELECT count(*) FROM interaction_log WHERE event = 'checkout'")
    assert checkouts == 1


def _drain(flow: Flow, workers: int, total_pairs: int) -> list[BaseException]:
    actors = [flow.new_actor(f"w{i}") for i in range(workers)]
    done = Counter[str]()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(actor: uuid.UUID) -> None:
        idle = 0
        try:
            while idle < 50:
                with lock:
                    if sum(done.values()) >= total_pairs:
                        return
                for step in reversed(STEPS):
                    c = flow.checkout(step, actor)
                    if c is not None:
                        flow.submit(c, actor, **{f"by_{step}": str(actor)})
                        with lock:
                            done[step] += 1
                        idle = 0
                        break
                else:
                    idle += 1
        except BaseException as exc:  # noqa: BLE001 - surfaced by the caller's assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(a,)) for a in actors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _assert_each_processed_once_per_step(flow: Flow, n: int) -> None:
    with flow.engine.db.connect() as conn:
        statuses = Counter(
            dict(conn.execute(sa.select(U.c.status, sa.func.count()).group_by(U.c.status)).all())
        )
        assert statuses == Counter({"PENDING": n})
        done_ix = flow.engine.topologies.of_instance(flow.instance_id).interaction_ids["Done"]
        in_done = conn.execute(
            sa.select(sa.func.count()).select_from(U).where(U.c.current_interaction_id == done_ix)
        ).scalar()
        assert in_done == n
        per_step = conn.execute(
            sa.select(A.c.key, sa.func.count(), sa.func.count(sa.distinct(A.c.uow_id)))
            .where(A.c.key.like("by_%"))
            .group_by(A.c.key)
        ).all()
        assert sorted(per_step) == [(f"by_{s}", n, n) for s in STEPS]
        submits = conn.execute(
            sa.select(sa.func.count()).select_from(L).where(L.c.event == "submit")
        ).scalar()
        assert submits == 3 * n


@pytest.mark.postgres
@pytest.mark.slow
def test_eight_workers_drain_2000_uows_exactly_once_per_step_postgres(pg_engine: Engine) -> None:
    flow = Flow(pg_engine, THREE_STEP)
    for i in range(1999):
        flow.genesis(n=i)
    assert _drain(flow, 8, 3 * 2000) == []
    _assert_each_processed_once_per_step(flow, 2000)


@pytest.mark.slow
def test_eight_workers_drain_uows_exactly_once_per_step_sqlite(
    tmp_path: Path, sqlite_template: Path
) -> None:
    import shutil

    shutil.copy(sqlite_template, tmp_path / "c.db")
    engine = Engine(
        Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", scheduler_enabled=False)
    )
    flow = Flow(engine, THREE_STEP)
    for i in range(299):
        flow.genesis(n=i)
    assert _drain(flow, 8, 3 * 300) == []
    _assert_each_processed_once_per_step(flow, 300)
    engine.close()


KILLER = r"""
import os, sys, time, uuid
import sqlalchemy as sa
from sqlalchemy import event
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings

url, uow_id, actor_id, lease_id = sys.argv[1:5]
engine = Engine(Settings(database_url=url, scheduler_enabled=False))

@event.listens_for(engine.db.engine, "after_cursor_execute")
def _stall(conn, cursor, statement, params, context, executemany):
    if "INSERT INTO uow_attributes" in statement:
        print("WROTE", flush=True)
        time.sleep(60)

# Learning a rule makes the submit a multi-statement transaction on both databases (a plain
# submit on PostgreSQL is a single statement, atomic by itself).
engine.runtime.submit(uuid.UUID(uow_id), uuid.UUID(actor_id),
                      {"half": "written", "_learned_rule": {"key": "k", "value": 1}},
                      lease_id=uuid.UUID(lease_id))
"""


def test_a_process_killed_mid_submit_leaves_no_half_move(engine: Engine, db_url: str) -> None:
    flow = Flow(engine, THREE_STEP, {"n": 1})
    c = flow.take("Step1")
    before = flow.uow(c.uow_id)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLER, db_url, str(c.uow_id), str(flow.actor), str(c.lease_id)],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "WROTE"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    after = flow.uow(c.uow_id)
    assert (after.uow.status, after.uow.lease_id, after.attributes) == (
        before.uow.status,
        before.uow.lease_id,
        before.attributes,
    )
    events = [t.event for t in engine.instances.history(c.uow_id).transitions]
    assert events == ["genesis", "checkout"]
    assert engine.memory.list_for_role(flow.roles["Step1"]) == []
    # The lease holder can still finish the work normally.
    assert flow.submit(c, done=True).interaction == "Q2"
