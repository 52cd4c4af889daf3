"""Time memory decay of N stale memories while a checkout loop keeps working.

    python bench/memory_decay.py --db sqlite --n 100000
    python bench/memory_decay.py --db postgres --n 1000000

Seeds N memories last accessed 100 days ago (on roles nobody checks out for) plus a few
fresh memories that every checkout injects, and a queue of work. A thread checks work out
and submits it in a loop; the decay runs meanwhile. Prints the decay time and the checkout
latencies seen during it. Targets: 1,000,000 stale memories in <= 15 s, no checkout waiting
more than 200 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import make_engine, scratch_database, setup_instance  # noqa: E402
from bench.zombie_sweep import settle  # noqa: E402
from chameleon_workflow.domain.enums import MemoryScope  # noqa: E402
from chameleon_workflow.engine.core import Engine  # noqa: E402
from chameleon_workflow.store.types import UtcDateTime  # noqa: E402

_MEMORY = (
    "id, instance_id, role_id, scope, actor_id, key, value, version, confidence, is_toxic, "
    "created_at, updated_at, last_accessed_at"
)
_MEMORY_VALUES = (
    "{uuid}, :inst, CASE WHEN i % 2 = 0 THEN :r2 ELSE :r3 END, 'GLOBAL', NULL, 'k' || i, "
    "'1', 1, 1.0, {false}, :at, :at, :at"
)
_UOW = (
    "id, instance_id, status, current_interaction_id, child_count, finished_child_count, "
    "created_at, updated_at, entered_at, reclaim_count"
)
_UOW_VALUES = "{uuid}, :inst, 'PENDING', :ix, 0, 0, :now, :now, :now, 0"
_PG = "INSERT INTO {table} ({cols}) SELECT {vals} FROM generate_series(1, :n) AS g(i)"
_SQLITE = (
    "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n) "
    "INSERT INTO {table} ({cols}) SELECT {vals} FROM seq"
)


def _seed(engine: Engine, table: str, cols: str, vals: str, params: dict[str, object]) -> None:
    pg = engine.db.is_postgres
    template = _PG if pg else _SQLITE
    values = vals.format(
        uuid="gen_random_uuid()" if pg else "lower(hex(randomblob(16)))",
        false="false" if pg else "0",
    )
    stmt = sa.text(template.format(table=table, cols=cols, vals=values)).bindparams(
        *(sa.bindparam(k, type_=sa.Uuid()) for k in ("inst", "r2", "r3", "ix") if k in params),
        *(sa.bindparam(k, type_=UtcDateTime()) for k in ("at", "now") if k in params),
    )
    with engine.db.begin() as conn:
        conn.execute(stmt, params)


def seed(engine: Engine, n: int, work: int) -> tuple[object, object]:
    instance_id, roles, actors = setup_instance(engine, workers=1)
    topo = engine.topologies.of_instance(instance_id)
    now = datetime.now(UTC)
    stale = {"n": n, "inst": instance_id, "r2": roles["Step2"], "r3": roles["Step3"]}
    _seed(engine, "memories", _MEMORY, _MEMORY_VALUES, stale | {"at": now - timedelta(days=100)})
    queue = {"n": work, "inst": instance_id, "ix": topo.interaction_ids["Q1"], "now": now}
    _seed(engine, "uows", _UOW, _UOW_VALUES, queue)
    for i in range(20):  # what every checkout injects (and touches)
        engine.memory.write(roles["Step1"], key=f"rule{i}", value=i, scope=MemoryScope.GLOBAL)
    settle(engine)
    return actors[0], roles["Step1"]


class CheckoutLoop(threading.Thread):
    """Check out and submit work for one role until stopped; record each checkout's time."""

    def __init__(self, engine: Engine, actor: object, role: object) -> None:
        super().__init__(daemon=True)
        self.engine, self.actor, self.role = engine, actor, role
        self.latencies: list[float] = []
        self.recording = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        rt = self.engine.runtime
        while not self.stopping.is_set():
            t = time.perf_counter()
            c = rt.checkout(self.actor, self.role)  # type: ignore[arg-type]
            if self.recording.is_set():
                self.latencies.append(time.perf_counter() - t)
            if c is None:
                return
            rt.submit(c.uow_id, self.actor, {"seen": True}, lease_id=c.lease_id)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--work", type=int, default=50_000, help="UOWs queued for the loop")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--pause", type=float, default=None, help="seconds between batches")
    args = parser.parse_args()
    with scratch_database(args.db) as url:
        engine = make_engine(url)
        if args.pause is not None:
            paused = {"maintenance_batch_pause_seconds": args.pause}
            engine.maintenance.settings = engine.settings.model_copy(update=paused)
        try:
            t = time.perf_counter()
            actor, role = seed(engine, args.n, args.work)
            print(f"{args.db}: seeded {args.n:,} stale memories in {time.perf_counter() - t:.1f} s")
            loop = CheckoutLoop(engine, actor, role)
            loop.start()
            time.sleep(0.5)  # warm up: pool, caches, topology
            loop.recording.set()
            t = time.perf_counter()
            run = engine.maintenance.memory_decay(90, batch_size=args.batch_size)
            elapsed = time.perf_counter() - t
            loop.stopping.set()
            loop.join()
        finally:
            engine.close()
    report(args, run.counts, run.parameters["batch_size"], elapsed, loop.latencies)


def report(args: argparse.Namespace, counts: dict[str, int], batch: int, elapsed: float,
           waits: list[float]) -> None:  # fmt: skip
    deleted = counts["deleted"]
    print(
        f"{args.db}: decayed {deleted:,} memories in {elapsed:.2f} s ({deleted / elapsed:,.0f}/s, "
        f"{counts['batches']} batches of {batch:,})"
    )
    if waits:
        qs = statistics.quantiles(waits, n=100, method="inclusive")
        print(
            f"{args.db}: {len(waits):,} checkouts during the decay: p50 {qs[49] * 1000:.1f} ms, "
            f"p99 {qs[98] * 1000:.1f} ms, max checkout wait {max(waits) * 1000:.1f} ms"
        )
    target = 15.0 * args.n / 1_000_000
    worst = max(waits) if waits else 0.0
    decay_verdict = "within" if elapsed <= target else "OVER"
    wait_verdict = "within" if worst <= 0.2 else "OVER"
    print(
        f"{args.db}: targets: decay <= {target:.2f} s -> {decay_verdict}; "
        f"max checkout wait <= 200 ms -> {wait_verdict}"
    )


if __name__ == "__main__":
    main()
