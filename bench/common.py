"""Shared set-up for the benchmarks: a scratch database and a seeded instance."""

from __future__ import annotations

import os
import statistics
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import sqlalchemy as sa

from chameleon_workflow.domain.enums import ActorType
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings

PG_ADMIN = os.environ.get(
    "CHAMELEON_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WORKFLOW = Path(__file__).with_name("three_step.yml")


@contextmanager
def scratch_database(kind: str) -> Iterator[str]:
    """A URL of a new, empty database of ``kind`` (sqlite or postgres), removed afterwards."""
    if kind == "sqlite":
        with TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"chameleon_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def make_engine(url: str, pool_size: int = 10) -> Engine:
    engine = Engine(Settings(database_url=url, db_pool_size=pool_size, scheduler_enabled=False))
    engine.upgrade_schema()
    return engine


def setup_instance(
    engine: Engine, workers: int
) -> tuple[uuid.UUID, dict[str, uuid.UUID], list[uuid.UUID]]:
    """Import the three-step workflow, instantiate it and create assigned actors."""
    template = engine.templates.import_yaml(WORKFLOW.read_text()).template
    g = engine.instances.instantiate(template.id, {"seed": True})
    roles = {r.name: r.id for r in engine.instances.describe(g.instance.id)["roles"]}
    actors = []
    for i in range(workers):
        actor = engine.instances.create_actor(f"bench-{i}", ActorType.SYSTEM)
        for name in ("Step1", "Step2", "Step3", "Finish"):
            engine.instances.assign(actor, roles[name])
        actors.append(actor)
    return g.instance.id, roles, actors


def percentiles(samples: list[float]) -> str:
    if not samples:
        return "no samples"
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return (
        f"p50 {qs[49] * 1000:.2f} ms, p99 {qs[98] * 1000:.2f} ms, max {max(samples) * 1000:.2f} ms"
    )
