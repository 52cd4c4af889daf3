"""GET /uows's query at scale: p50/p99 of filtered pages over about a million UOWs.

    python bench/uow_listing.py --db sqlite --uows 1000000 --samples 200
    python bench/uow_listing.py --db postgres --uows 1000000

Seeds ``--uows`` UOWs over four instances of the three-step workflow (80 % COMPLETED,
10 % PENDING, 5 % FAILED with a failure record, 3 % ACTIVE held by one of 20 actors, 2 %
ABANDONED; updated over 30 days), then times the engine's listing (query and row
summaries) for a few filters, first pages and pages deep into the result.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from bench.common import make_engine, percentiles, scratch_database, setup_instance  # noqa: E402
from chameleon_workflow.domain.enums import ActorType, UowStatus  # noqa: E402
from chameleon_workflow.domain.failures import FailureRecord
from chameleon_workflow.engine.core import Engine  # noqa: E402
from chameleon_workflow.engine.topology import Topology  # noqa: E402
from chameleon_workflow.store import uows  # noqa: E402
from chameleon_workflow.store.uow_list import UowFilter  # noqa: E402

MIX = [("COMPLETED", 80), ("PENDING", 10), ("FAILED", 5), ("ACTIVE", 3), ("ABANDONED", 2)]
PLACE = {"COMPLETED": "Done", "PENDING": "Q2", "FAILED": "Errors", "ACTIVE": "Q3",
         "ABANDONED": "Timeouts"}  # fmt: skip
HOLDER = {"COMPLETED": "Finish", "PENDING": "Step1", "FAILED": "Step3", "ACTIVE": "Step3",
          "ABANDONED": "Timer"}  # fmt: skip


def _row(
    rng: random.Random, topo: Topology, actors: list[uuid.UUID], now: datetime
) -> dict[str, Any]:
    status = rng.choices([s for s, _ in MIX], [w for _, w in MIX])[0]
    at = now - timedelta(seconds=rng.uniform(0, 30 * 86_400))
    active = status == "ACTIVE"
    return {
        "id": uuid.uuid4(),
        "instance_id": topo.id,
        "parent_id": None,
        "status": status,
        "current_interaction_id": topo.interaction_ids[PLACE[status]],
        "current_role_id": topo.role_ids[HOLDER[status]],
        "child_count": 0,
        "finished_child_count": 0,
        "created_at": at - timedelta(seconds=60),
        "updated_at": at,
        "entered_at": at,
        "lease_id": uuid.uuid4() if active else None,
        "lease_holder_id": rng.choice(actors) if active else None,
        "leased_at": at if active else None,
        "last_heartbeat": at if active else None,
        "failure": FailureRecord.explicit(
            "bad_input", None, at=at, actor_id=actors[0], role="Step3"
        ).as_json()
        if status == "FAILED"
        else None,
    }


def seed(engine: Engine, topos: list[Topology], actors: list[uuid.UUID], n: int) -> None:
    rng, now, batch = random.Random(7), datetime.now(UTC), 10_000
    for first in range(0, n, batch):
        rows = [_row(rng, rng.choice(topos), actors, now) for _ in range(min(batch, n - first))]
        with engine.db.begin() as conn:
            uows.insert_uows(conn, rows)


def time_query(engine: Engine, f: UowFilter, samples: int, depth: int) -> tuple[list[float], int]:
    """Seconds per page: the first page, or the page after ``depth`` pages of 50."""
    after = None
    for _ in range(depth):
        following = engine.instances.list_uows(f, after=after).next_key
        if following is None:
            break  # fewer pages than asked: time the last one
        after = following
    times, rows = [], 0
    for _ in range(samples):
        t = time.perf_counter()
        rows = len(engine.instances.list_uows(f, after=after).items)
        times.append(time.perf_counter() - t)
    return times, rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--uows", type=int, default=1_000_000)
    p.add_argument("--samples", type=int, default=200)
    args = p.parse_args()
    with scratch_database(args.db) as url:
        engine = make_engine(url)
        first, roles, _ = setup_instance(engine, 0)
        template = engine.instances.describe(first)["instance"].template_id
        ids = [first] + [engine.instances.instantiate(template, {}).instance.id for _ in range(3)]
        topos = [engine.topologies.of_instance(i) for i in ids]
        actors = [engine.instances.create_actor(f"w{i}", ActorType.SYSTEM) for i in range(20)]
        t0 = time.perf_counter()
        seed(engine, topos, actors, args.uows)
        if engine.db.is_postgres:
            with engine.db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        print(f"seeded {args.uows} UOWs in {time.perf_counter() - t0:.1f} s ({args.db})")
        middle = datetime.now(UTC) - timedelta(days=15)
        t = topos[1]
        cases: list[tuple[str, Callable[[], UowFilter]]] = [
            ("no filter", lambda: UowFilter()),
            ("status=FAILED", lambda: UowFilter(status=UowStatus.FAILED)),
            ("instance_id", lambda: UowFilter(instance_id=t.id)),
            (
                "instance_id&status=ACTIVE",
                lambda: UowFilter(instance_id=t.id, status=UowStatus.ACTIVE),
            ),
            (
                "interaction_id=Errors",
                lambda: UowFilter(interaction_id=t.interaction_ids["Errors"]),
            ),
            ("role_id=Step3", lambda: UowFilter(role_id=t.role_ids["Step3"])),
            ("actor_id (lease holder)", lambda: UowFilter(lease_holder_id=actors[3])),
            ("updated_before=15 days ago", lambda: UowFilter(updated_before=middle)),
        ]
        for name, make in cases:
            for depth in (0, 20):
                times, rows = time_query(engine, make(), args.samples, depth)
                where = "first page" if depth == 0 else f"page {depth + 1}"
                print(f"{name:32} {where:10} ({rows:2} rows): {percentiles(times)}")
        engine.close()
        del roles


if __name__ == "__main__":
    main()
