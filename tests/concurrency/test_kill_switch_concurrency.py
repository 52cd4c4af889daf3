"""The kill switch during a running drain (PostgreSQL, threads): nothing lost, nothing done
twice, nothing handed out while paused, and the drain finishes cleanly after resume."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.errors import InstancePaused
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from chameleon_workflow.store.tables import InteractionLog, Uow, UowAttribute
from tests.flows import Flow

L = InteractionLog.__table__
U = Uow.__table__
A = UowAttribute.__table__
THREE_STEP = (Path(__file__).resolve().parents[2] / "bench" / "three_step.yml").read_text()
STEPS = ("Step1", "Step2", "Step3")
N = 300
WORKERS = 4


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    from tests.conftest import empty_database

    empty_database(pg_url)
    eng = Engine(Settings(database_url=pg_url, db_pool_size=20, scheduler_enabled=False))
    yield eng
    eng.close()


class Drain:
    """Workers taking the furthest step first, until told to stop."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.lock = threading.Lock()
        self.submitted = Counter[str]()
        self.refused = 0  # submits the kill switch had ended the lease of
        self.errors: list[BaseException] = []
        self.handed_out_while_paused: list[uuid.UUID] = []
        self.paused = threading.Event()  # set once the kill switch has returned
        self.resuming = threading.Event()  # set just before resume is called
        self.stop = threading.Event()

    def total(self) -> int:
        with self.lock:
            return sum(self.submitted.values())

    def work(self, actor: uuid.UUID) -> None:
        try:
            while not self.stop.is_set():
                for step in reversed(STEPS):
                    was_paused = self.paused.is_set()
                    c = self.flow.checkout(step, actor)
                    if c is None:
                        continue
                    if was_paused and not self.resuming.is_set():
                        self.handed_out_while_paused.append(c.uow_id)
                    try:
                        self.flow.submit(c, actor, **{f"by_{step}": str(actor)})
                    except InstancePaused:
                        with self.lock:
                            self.refused += 1
                    else:
                        with self.lock:
                            self.submitted[step] += 1
                    break
                else:
                    time.sleep(0.002)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test's assertion
            self.errors.append(exc)


def _count(engine: Engine, stmt: sa.Select[tuple[int]]) -> int:
    with engine.db.connect() as conn:
        return int(conn.execute(stmt).scalar() or 0)


@pytest.mark.postgres
def test_a_kill_switch_during_a_four_worker_drain_loses_and_duplicates_nothing(
    pg_engine: Engine,
) -> None:
    flow = Flow(pg_engine, THREE_STEP, {"n": -1})
    for i in range(N - 1):
        flow.genesis(n=i)
    drain = Drain(flow)
    actors = [flow.new_actor(f"w{i}") for i in range(WORKERS)]
    threads = [threading.Thread(target=drain.work, args=(a,)) for a in actors]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 120
        while drain.total() < N and time.monotonic() < deadline:  # a third of the way
            time.sleep(0.005)
        out = pg_engine.kill_switch.pause(flow.instance_id, "mid-drain stop", by="pilot")
        drain.paused.set()
        submitted_at_kill = drain.total()
        assert 0 < submitted_at_kill < 3 * N

        # Everything of the instance is PAUSED (nothing live, nothing finished: no OMEGA).
        with pg_engine.db.connect() as conn:
            by_status = dict(
                conn.execute(
                    sa.select(U.c.status, sa.func.count())
                    .where(U.c.instance_id == flow.instance_id)
                    .group_by(U.c.status)
                ).all()
            )
        assert by_status == {"PAUSED": N}
        assert out.paused_uow_count == N
        time.sleep(0.3)  # the workers keep asking: they get nothing
        assert drain.total() == submitted_at_kill

        drain.resuming.set()
        back = pg_engine.kill_switch.resume(flow.instance_id, "carry on", by="pilot")
        assert back.resumed_uow_count == N
        deadline = time.monotonic() + 180
        while drain.total() < 3 * N and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        drain.stop.set()
        for t in threads:
            t.join(60)
    assert drain.errors == []
    assert drain.handed_out_while_paused == []
    assert drain.submitted == Counter({s: N for s in STEPS})

    engine = pg_engine
    done_ix = engine.topologies.of_instance(flow.instance_id).interaction_ids["Done"]
    with engine.db.connect() as conn:
        finished = conn.execute(
            sa.select(U.c.status, U.c.current_interaction_id, sa.func.count()).group_by(
                U.c.status, U.c.current_interaction_id
            )
        ).all()
        assert finished == [("PENDING", done_ix, N)]
        per_step = conn.execute(
            sa.select(A.c.key, sa.func.count(), sa.func.count(sa.distinct(A.c.uow_id)))
            .where(A.c.key.like("by_%"))
            .group_by(A.c.key)
        ).all()
        assert sorted(per_step) == [(f"by_{s}", N, N) for s in STEPS]
        events = Counter(
            dict(conn.execute(sa.select(L.c.event, sa.func.count()).group_by(L.c.event)).all())
        )
        ended = conn.execute(
            sa.select(sa.func.count()).where(L.c.event == "paused", L.c.from_status == "ACTIVE")
        ).scalar()
        paused_logs = conn.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(L.c.uow_id))).where(
                L.c.event == "paused"
            )
        ).one()
    assert events["submit"] == 3 * N
    assert tuple(paused_logs) == (N, N)  # one log row per paused UOW, none twice
    assert events["resumed"] == N
    # Every lease the kill switch ended was refused to its holder, and only those were
    # checked out again: checkouts = one per step per UOW + the leases it ended.
    assert drain.refused == ended
    assert events["checkout"] == 3 * N + ended
