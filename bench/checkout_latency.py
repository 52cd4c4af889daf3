"""Checkout latency with a deep queue and a large role memory.

    python bench/checkout_latency.py --db postgres --queue 100000 --memories 1000 --samples 500
    python bench/checkout_latency.py --db sqlite --queue 5000 --memories 1000 --versions 5

Seeds ``--queue`` waiting UOWs (with one attribute each) in the first step's queue and
``--memories`` global memories on its role, then times single-worker checkouts (each
followed by a submit, which is not timed) and prints p50/p99.

    python bench/checkout_latency.py --db postgres --dci --queue 5000 --memories 100

``--dci`` compares Dynamic Context Injection's cost in the same run: a second instance of
the workflow whose first step carries a CONDITIONAL_INJECTOR of 3 rules (2 of which apply to
every UOW, so each checkout also writes its ``dci_applied`` row) is seeded alike, and
checkouts alternate between the two (the order flipped every pair). It prints both p50s,
DCI's overhead on the p50, and the spread: the lowest and highest overhead over 5 blocks.

With ``--versions N`` (N > 1) every memory is written N times through the engine's memory
service (``engine.memory.write``, the same call before and after issue 10), so each ends at
version N with whatever history the code under test keeps; with N = 1 (the default) the
memories are inserted in bulk, as before.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (  # noqa: E402
    WORKFLOW,
    make_engine,
    percentiles,
    scratch_database,
    setup_instance,
)
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


# The injector the --dci instance's first step gets: rules 0 and 2 apply to every UOW.
INJECTOR = """
      guardians:
        - name: S1_Context
          type: CONDITIONAL_INJECTOR
          config:
            scope: pre_execution
            rules:
              - condition: "n >= 0"
                action: mutate
                payload: {instructions: "Mind the totals.", knowledge_fragments: ["kb:a"]}
              - condition: "n < 0 and seed == true"
                action: mutate
                payload: {model_override: never-used}
              - condition: "seen != true"
                action: mutate
                payload: {knowledge_fragments: ["kb:a", "kb:b"], instructions: "Be brief."}
"""


def dci_workflow() -> str:
    """The bench workflow, renamed, with the injector on its first step's inbound."""
    text = WORKFLOW.read_text().replace("Bench_Three_Step", "Bench_Three_Step_DCI")
    plain = "    - {name: S1_In, role: Step1, interaction: Q1, direction: INBOUND}\n"
    assert plain in text
    block = "    - name: S1_In\n      role: Step1\n      interaction: Q1\n      direction: INBOUND"
    return text.replace(plain, block + INJECTOR)


def setup_dci_instance(engine, actor: uuid.UUID) -> tuple[uuid.UUID, dict[str, uuid.UUID]]:  # type: ignore[no-untyped-def]
    template = engine.templates.import_yaml(dci_workflow()).template
    g = engine.instances.instantiate(template.id, {"seed": True})
    roles = {r.name: r.id for r in engine.instances.describe(g.instance.id)["roles"]}
    for name in ("Step1", "Step2", "Step3", "Finish"):
        engine.instances.assign(actor, roles[name])
    return g.instance.id, roles


def compare_dci(args: argparse.Namespace) -> None:
    with scratch_database(args.db) as url:
        engine = make_engine(url)
        instance_id, roles, actors = setup_instance(engine, 1)
        actor = actors[0]
        dci_instance, dci_roles = setup_dci_instance(engine, actor)
        t0 = time.perf_counter()
        sides = {"plain": (instance_id, roles["Step1"]), "dci": (dci_instance, dci_roles["Step1"])}
        for instance, role in sides.values():
            topo = engine.topologies.of_instance(instance)
            seed_queue(engine, instance, topo.interaction_ids["Q1"], args.queue)
            seed_memories(engine, instance, role, args.memories)
        if engine.db.is_postgres:
            with engine.db.engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        seeded = time.perf_counter() - t0
        print(f"seeded 2 x {args.queue} UOWs and 2 x {args.memories} memories in {seeded:.1f} s")
        samples: dict[str, list[float]] = {"plain": [], "dci": []}
        warmup = 20
        for i in range(args.samples + warmup):
            order = ("plain", "dci") if i % 2 == 0 else ("dci", "plain")
            for side in order:
                role = sides[side][1]
                t = time.perf_counter()
                c = engine.runtime.checkout(actor, role)
                elapsed = time.perf_counter() - t
                assert c is not None and len(c.context) == args.memories
                assert (c.dci is not None) == (side == "dci")
                if i >= warmup:
                    samples[side].append(elapsed)
                engine.runtime.submit(c.uow_id, actor, {"seen": True}, lease_id=c.lease_id)
        applied = engine.runtime.checkout(actor, sides["dci"][1])
        assert applied is not None and applied.dci is not None
        assert [r["rule"] for r in applied.dci["applied_rules"]] == [0, 2]
        plain50 = statistics.median(samples["plain"])
        dci50 = statistics.median(samples["dci"])
        blocks = 5
        size = len(samples["plain"]) // blocks
        overheads = [
            statistics.median(samples["dci"][b * size : (b + 1) * size])
            / statistics.median(samples["plain"][b * size : (b + 1) * size])
            - 1
            for b in range(blocks)
        ]
        print(f"checkout without DCI db={args.db}: {percentiles(samples['plain'])}")
        print(f"checkout with DCI (3 rules, 2 apply) db={args.db}: {percentiles(samples['dci'])}")
        print(
            f"DCI checkout p50 {dci50 * 1000:.3f} ms vs {plain50 * 1000:.3f} ms: "
            f"{(dci50 / plain50 - 1) * 100:+.1f} % (spread over {blocks} blocks: "
            f"{min(overheads) * 100:+.1f} % .. {max(overheads) * 100:+.1f} %; goal <= +10 %) "
            f"over {len(samples['dci'])} checkouts each"
        )
        engine.close()


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
        "--dci",
        action="store_true",
        help="compare checkouts with and without a 3-rule CONDITIONAL_INJECTOR, alternating",
    )
    p.add_argument(
        "--versions", type=int, default=1, help="versions of each memory (written one by one)"
    )
    args = p.parse_args()
    if args.versions < 1:
        p.error("--versions must be at least 1")
    if args.dci:
        compare_dci(args)
        return
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
