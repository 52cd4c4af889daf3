"""Time a /metrics scrape (its database reads and formatting, no HTTP) over N UOWs.

    python bench/metrics_scrape.py --db sqlite --n 1000000
    python bench/metrics_scrape.py --db postgres --n 1000000 --repeat 50

Seeds N UOWs in a scratch database (SQLite file or a new PostgreSQL database, dropped
afterwards) with one INSERT ... SELECT: one in ten ACTIVE with heartbeats spread over the
last hour, the rest PENDING, COMPLETED, FAILED or ABANDONED. Then times, ``--repeat``
times each: the oldest-heartbeat aggregate alone, the UOW count by status alone, and the
whole scrape (``generate_latest`` over the app's registry). Prints the median and the
spread (p10-p90, min-max) and the heartbeat query's plan. No target: figures only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from prometheus_client.exposition import generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import make_engine, scratch_database, setup_instance  # noqa: E402
from bench.zombie_sweep import settle  # noqa: E402
from chameleon_workflow.api.app import create_app  # noqa: E402
from chameleon_workflow.engine.core import Engine  # noqa: E402
from chameleon_workflow.engine.telemetry import oldest_heartbeat_age  # noqa: E402
from chameleon_workflow.store.types import UtcDateTime  # noqa: E402

_COLUMNS = (
    "id, instance_id, status, current_interaction_id, current_role_id, child_count, "
    "finished_child_count, created_at, updated_at, entered_at, lease_id, lease_holder_id, "
    "leased_at, last_heartbeat, reclaim_count"
)
# i % 10: 0 ACTIVE (leased, heartbeat i seconds % 3600 before :at), 1-2 PENDING, 3 FAILED,
# 4 ABANDONED, the rest COMPLETED.
_STATUS = (
    "CASE i % 10 WHEN 0 THEN 'ACTIVE' WHEN 1 THEN 'PENDING' WHEN 2 THEN 'PENDING' "
    "WHEN 3 THEN 'FAILED' WHEN 4 THEN 'ABANDONED' ELSE 'COMPLETED' END"
)
_ACTIVE = "i % 10 = 0"
_PG_BEAT = f"CASE WHEN {_ACTIVE} THEN :at - make_interval(secs => i % 3600) END"
_SQLITE_BEAT = f"CASE WHEN {_ACTIVE} THEN datetime(:at, '-' || (i % 3600) || ' seconds') END"
_VALUES = (
    "{uuid}, :inst, {status}, :ix, :role, 0, 0, :at, :at, :at, "
    "CASE WHEN {a} THEN {uuid} END, CASE WHEN {a} THEN :actor END, CASE WHEN {a} THEN :at END, "
    "{beat}, 0"
)
SEED_PG = (
    f"INSERT INTO uows ({_COLUMNS}) SELECT "
    + _VALUES.format(uuid="gen_random_uuid()", status=_STATUS, a=_ACTIVE, beat=_PG_BEAT)
    + " FROM generate_series(1, :n) AS s(i)"
)
SEED_SQLITE = (
    "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n) "
    f"INSERT INTO uows ({_COLUMNS}) SELECT "
    + _VALUES.format(
        uuid="lower(hex(randomblob(16)))",
        status=_STATUS,
        a=_ACTIVE,
        beat=_SQLITE_BEAT,
    )
    + " FROM seq"
)
HEARTBEAT_SQL = "SELECT min(last_heartbeat) FROM uows WHERE status = 'ACTIVE'"


def seed(engine: Engine, n: int, at: datetime) -> None:
    instance_id, roles, actors = setup_instance(engine, workers=1)
    topo = engine.topologies.of_instance(instance_id)
    sql = SEED_PG if engine.db.is_postgres else SEED_SQLITE
    stmt = sa.text(sql).bindparams(
        sa.bindparam("inst", type_=sa.Uuid()),
        sa.bindparam("ix", type_=sa.Uuid()),
        sa.bindparam("role", type_=sa.Uuid()),
        sa.bindparam("actor", type_=sa.Uuid()),
        sa.bindparam("at", type_=UtcDateTime()),
    )
    params = {
        "n": n, "inst": instance_id, "ix": topo.interaction_ids["Q1"], "role": roles["Step1"],
        "actor": actors[0], "at": at,
    }  # fmt: skip
    with engine.db.begin() as conn:
        conn.execute(stmt, params)
    settle(engine)


def plan(engine: Engine) -> str:
    explain = "EXPLAIN " if engine.db.is_postgres else "EXPLAIN QUERY PLAN "
    with engine.db.connect() as conn:
        rows = conn.exec_driver_sql(explain + HEARTBEAT_SQL).all()
    return "\n".join(f"    {row[-1]}" for row in rows)


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    call()  # warm: connections, statement caches
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def figures(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    deciles = statistics.quantiles(ms, n=10, method="inclusive")
    return (
        f"median {statistics.median(ms):8.2f} ms   p10-p90 {deciles[0]:.2f}-{deciles[-1]:.2f} ms"
        f"   min-max {ms[0]:.2f}-{ms[-1]:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with scratch_database(args.db) as url:
        engine = make_engine(url)
        try:
            at = datetime.now(UTC)
            t = time.perf_counter()
            seed(engine, args.n, at)
            print(f"{args.db}: seeded {args.n:,} UOWs in {time.perf_counter() - t:.1f} s")
            app = create_app(engine.settings, engine=engine)
            app.state.engine = engine  # what the lifespan does; no server is started
            registry = app.state.metrics_registry
            age = oldest_heartbeat_age(engine.db, datetime.now(UTC))
            print(f"{args.db}: oldest ACTIVE heartbeat {age:.0f} s old; its plan:\n{plan(engine)}")
            rows = [
                ("oldest heartbeat", lambda: oldest_heartbeat_age(engine.db, at)),
                ("uows by status", engine.instances.counts_by_status),
                ("whole scrape", lambda: generate_latest(registry)),
            ]
            for name, call in rows:
                print(f"{args.db}: {name:16s} {figures(timed(call, args.repeat))}")
        finally:
            engine.close()


if __name__ == "__main__":
    main()
