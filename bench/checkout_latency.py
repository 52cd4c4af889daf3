"""Checkout latency with a deep queue and a large role memory.

    python bench/checkout_latency.py --db postgres --queue 100000 --memories 1000 --samples 500
    python bench/checkout_latency.py --db sqlite --queue 5000 --memories 1000 --versions 5

Seeds ``--queue`` waiting UOWs (with one attribute each) in the first step's queue and
``--memories`` global memories on its role, then times single-worker checkouts (each
followed by a submit, which is not timed) and prints p50/p99.

With ``--versions N`` (N > 1) every memory is written N times through the engine's memory
service (``engine.memory.write``, the same call before and after issue 10), so each ends at
version N with whatever history the code under test keeps; with N = 1 (the default) the
memories are inserted in bulk, as before.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import make_engine, percentiles, scratch_database, setup_instance  # noqa: E402
from chameleon_workflow.domain.enums import MemoryScope  # noqa: E402
from chameleon_workflow.store import uows  # noqa: E402
from chameleon_workflow.store.tables import Memory  # noqa: E402


def seed_queue(engine, instance_id: uuid.UUID, interaction_id: uuid.UUID, n: int) -> None:  # type: ignore[no-untyped-def]
    start = datetime.now(UTC) - timedelta(hours=1)
    batch = 10_000
    for first in range(0, n, batch):
        rows, attrs = [], []
        for i in range(first, min(n, first + batch)):
            uid = uuid.uuid4()
            at = start + timedelta(microseconds=i)
            rows.append(
                {
                    "id": uid,
                    "instance_id": instance_id,
                    "parent_id": None,
                    "status": "PENDING",
                    "current_interaction_id": interaction_id,
                    "current_role_id": None,
                    "child_count": 0,
                    "finished_child_count": 0,
                    "created_at": at,
                    "updated_at": at,
                    "entered_at": at,
                    "failure": None,
                }
            )
            attrs.append(
                {
                    "uow_id": uid,
                    "key": "n",
                    "version": 1,
                    "value": i,
                    "actor_id": None,
                    "reasoning": None,
                    "created_at": at,
                }
            )
        with engine.db.begin() as conn:
            uows.insert_uows(conn, rows)
            uows.insert_attributes(conn, attrs)


def seed_memories(engine, instance_id: uuid.UUID, role_id: uuid.UUID, n: int) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "instance_id": instance_id,
            "role_id": role_id,
            "scope": MemoryScope.GLOBAL.value,
            "actor_id": None,
            "key": f"rule_{i}",
            "value": {"advice": f"do thing {i}"},
            "version": 1,
            "confidence": 1.0,
            "is_toxic": False,
            "created_at": now,
            "updated_at": now,
            "last_accessed_at": now,
        }
        for i in range(n)
    ]
    with engine.db.begin() as conn:
        conn.execute(Memory.__table__.insert(), rows)


def write_versions(engine, role_id: uuid.UUID, n: int, versions: int) -> None:  # type: ignore[no-untyped-def]
    """``n`` global memories of the role, each written ``versions`` times (one transaction a
    write, as the API does)."""
    for v in range(1, versions + 1):
        for i in range(n):
            engine.memory.write(
                role_id,
                key=f"rule_{i}",
                value={"advice": f"do thing {i}", "version": v},
                scope=MemoryScope.GLOBAL,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    p.add_argument("--queue", type=int, default=100_000)
    p.add_argument("--memories", type=int, default=1_000)
    p.add_argument("--samples", type=int, default=500)
    p.add_argument(
        "--versions", type=int, default=1, help="versions of each memory (written one by one)"
    )
    args = p.parse_args()
    if args.versions < 1:
        p.error("--versions must be at least 1")
    with scratch_database(args.db) as url:
        engine = make_engine(url)
        instance_id, roles, actors = setup_instance(engine, 1)
        topo = engine.topologies.of_instance(instance_id)
        t0 = time.perf_counter()
        seed_queue(engine, instance_id, topo.interaction_ids["Q1"], args.queue)
        if args.versions == 1:
            seed_memories(engine, instance_id, roles["Step1"], args.memories)
        else:
            write_versions(engine, roles["Step1"], args.memories, args.versions)
        if engine.db.is_postgres:
            with engine.db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        seeded = time.perf_counter() - t0
        print(
            f"seeded {args.queue} UOWs and {args.memories} memories x {args.versions} "
            f"versions in {seeded:.1f} s"
        )
        actor, role = actors[0], roles["Step1"]
        samples = []
        for i in range(args.samples + 20):
            t = time.perf_counter()
            c = engine.runtime.checkout(actor, role)
            elapsed = time.perf_counter() - t
            assert c is not None and len(c.context) == args.memories
            if i >= 20:  # warm-up: connection pool and prepared statements
                samples.append(elapsed)
            engine.runtime.submit(c.uow_id, actor, {"seen": True}, lease_id=c.lease_id)
        print(
            f"checkout latency db={args.db} queue={args.queue} memories={args.memories} "
            f"versions={args.versions}: "
            f"{percentiles(samples)} over {len(samples)} checkouts"
        )
        engine.close()


if __name__ == "__main__":
    main()
