"""Time the zombie protocol reclaiming N zombies (with their interaction-log rows).

    python bench/zombie_sweep.py --db sqlite --n 100000
    python bench/zombie_sweep.py --db postgres --n 100000 --batch-size 10000

Seeds N ACTIVE UOWs whose last heartbeat is an hour old in a scratch database (SQLite file
or a new PostgreSQL database, dropped afterwards), then times one sweep and checks that
every zombie was reclaimed exactly once with one log row. Targets: <= 1.0 s on SQLite and
<= 2.0 s on PostgreSQL for 100,000 zombies.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import make_engine, scratch_database, setup_instance  # noqa: E402
from chameleon_workflow.engine.core import Engine  # noqa: E402
from chameleon_workflow.store.types import UtcDateTime  # noqa: E402

TARGET_SECONDS = {"sqlite": 1.0, "postgres": 2.0}

_COLUMNS = (
    "id, instance_id, status, current_interaction_id, current_role_id, child_count, "
    "finished_child_count, created_at, updated_at, entered_at, lease_id, lease_holder_id, "
    "leased_at, last_heartbeat, reclaim_count"
)
_VALUES = "{uuid}, :inst, 'ACTIVE', :ix, :role, 0, 0, :at, :at, :at, {uuid}, :actor, :at, :at, 0"
SEED_PG = f"INSERT INTO uows ({_COLUMNS}) SELECT {_VALUES} FROM generate_series(1, :n)".format(
    uuid="gen_random_uuid()"
)
SEED_SQLITE = (
    "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < :n) "
    f"INSERT INTO uows ({_COLUMNS}) SELECT {_VALUES} FROM seq"
).format(uuid="lower(hex(randomblob(16)))")


def seed_zombies(engine: Engine, n: int) -> None:
    """N leased UOWs, silent for an hour, in one INSERT ... SELECT; then fresh statistics."""
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
        "actor": actors[0], "at": datetime.now(UTC) - timedelta(hours=1),
    }  # fmt: skip
    with engine.db.begin() as conn:
        conn.execute(stmt, params)
    settle(engine)


def settle(engine: Engine) -> None:
    """What a running database has anyway: statistics, and no seeding backlog in the WAL."""
    if engine.db.is_postgres:
        with engine.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
        return
    raw = engine.db.engine.raw_connection()  # outside any transaction, as these need
    try:
        cursor = raw.cursor()
        cursor.execute("ANALYZE")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()


def check(engine: Engine, n: int) -> tuple[int, int]:
    with engine.db.connect() as conn:
        logs = conn.scalar(
            sa.text("SELECT count(DISTINCT uow_id) FROM interaction_log WHERE event = 'reclaim'")
        )
        left = conn.scalar(sa.text("SELECT count(*) FROM uows WHERE status = 'ACTIVE'"))
    return int(logs or 0), int(left or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    with scratch_database(args.db) as url:
        engine = make_engine(url)
        try:
            t = time.perf_counter()
            seed_zombies(engine, args.n)
            print(f"{args.db}: seeded {args.n:,} zombies in {time.perf_counter() - t:.1f} s")
            t = time.perf_counter()
            run = engine.maintenance.zombie_sweep(batch_size=args.batch_size)
            elapsed = time.perf_counter() - t
            logs, left = check(engine, args.n)
        finally:
            engine.close()
    target = TARGET_SECONDS[args.db] * args.n / 100_000
    verdict = "within" if elapsed <= target else "OVER"
    print(
        f"{args.db}: reclaimed {run.counts['reclaimed']:,} zombies in {elapsed:.3f} s "
        f"({run.counts['reclaimed'] / elapsed:,.0f}/s, {run.counts['batches']} batches of "
        f"{run.parameters['batch_size']:,}); log rows for {logs:,} UOWs; {left:,} still ACTIVE"
    )
    print(f"{args.db}: target {target:.2f} s -> {verdict} target")


if __name__ == "__main__":
    main()
