"""Time the kill switch pausing, and resume restoring, N units of work of one instance.

    python bench/kill_switch.py --db postgres --n 100000 --rounds 3
    python bench/kill_switch.py --db sqlite --n 100000

Seeds N waiting UOWs (one attribute each, as ``checkout_latency.seed_queue`` does) in the
first step's queue of one instance, leases ``--active-share`` of them (the kill switch ends
those leases), then pauses and resumes the instance ``--rounds`` times, printing the seconds
of each and checking after each that every UOW moved once with one log row. Target: each
≤ 2.0 s on PostgreSQL for 100,000 UOWs (issue 11).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.checkout_latency import seed_queue  # noqa: E402
from bench.common import make_engine, scratch_database, setup_instance  # noqa: E402
from bench.zombie_sweep import settle  # noqa: E402
from chameleon_workflow.engine.core import Engine  # noqa: E402

TARGET_SECONDS = {"postgres": 2.0, "sqlite": 2.0}
_LEASE = {
    "postgres": "gen_random_uuid()",
    "sqlite": "lower(hex(randomblob(16)))",
}


def lease_some(engine: Engine, instance_id: object, share: float, db: str) -> int:
    """Lease every k-th waiting UOW (ACTIVE with a holder), as workers would hold them."""
    if share <= 0:
        return 0
    every = max(1, round(1 / share))
    sql = (
        f"UPDATE uows SET status = 'ACTIVE', lease_id = {_LEASE[db]}, leased_at = updated_at, "
        "last_heartbeat = updated_at WHERE id IN (SELECT id FROM (SELECT id, row_number() "
        "OVER (ORDER BY entered_at) AS r FROM uows WHERE instance_id = :i) s "
        "WHERE s.r % :k = 0)"
    )
    with engine.db.begin() as conn:
        stmt = sa.text(sql).bindparams(sa.bindparam("i", type_=sa.Uuid()))
        return conn.execute(stmt, {"i": instance_id, "k": every}).rowcount


def counts(engine: Engine, instance_id: object) -> dict[str, int]:
    with engine.db.connect() as conn:
        stmt = sa.text(
            "SELECT status, count(*) FROM uows WHERE instance_id = :i GROUP BY status"
        ).bindparams(sa.bindparam("i", type_=sa.Uuid()))
        return {s: int(n) for s, n in conn.execute(stmt, {"i": instance_id})}


def log_rows(engine: Engine, event: str) -> int:
    with engine.db.connect() as conn:
        stmt = sa.text("SELECT count(*) FROM interaction_log WHERE event = :e")
        return int(conn.execute(stmt, {"e": event}).scalar() or 0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--active-share", type=float, default=0.1)
    args = p.parse_args()
    with scratch_database(args.db) as url:
        engine = make_engine(url)
        try:
            instance_id, _, _ = setup_instance(engine, 1)
            topo = engine.topologies.of_instance(instance_id)
            t = time.perf_counter()
            seed_queue(engine, instance_id, topo.interaction_ids["Q1"], args.n - 1)
            active = lease_some(engine, instance_id, args.active_share, args.db)
            settle(engine)
            total = sum(counts(engine, instance_id).values())
            print(
                f"{args.db}: seeded {total:,} UOWs ({active:,} leased) "
                f"in {time.perf_counter() - t:.1f} s"
            )
            target = TARGET_SECONDS[args.db] * total / 100_000
            worst = 0.0
            for r in range(1, args.rounds + 1):
                t = time.perf_counter()
                out = engine.kill_switch.pause(instance_id, f"bench round {r}", by="bench")
                paused_s = time.perf_counter() - t
                assert out.paused_uow_count == total, out
                assert counts(engine, instance_id) == {"PAUSED": total}
                t = time.perf_counter()
                back = engine.kill_switch.resume(instance_id, f"bench round {r}", by="bench")
                resumed_s = time.perf_counter() - t
                assert back.resumed_uow_count == total, back
                assert counts(engine, instance_id) == {"PENDING": total}
                assert log_rows(engine, "paused") == log_rows(engine, "resumed") == r * total
                worst = max(worst, paused_s, resumed_s)
                print(
                    f"{args.db} round {r}: pause {total:,} UOWs in {paused_s:.3f} s "
                    f"({out.passes} pass), resume in {resumed_s:.3f} s"
                )
        finally:
            engine.close()
    verdict = "within" if worst <= target else "OVER"
    print(f"{args.db}: worst {worst:.3f} s; target {target:.2f} s -> {verdict} target")


if __name__ == "__main__":
    main()
