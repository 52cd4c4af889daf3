"""The storage seam: what each database's implementation costs, and what holds it together.

Statement counts are read from the real driver (SQLAlchemy's ``before_cursor_execute``
event on the engine under test): no timing, no mock.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from chameleon_workflow.domain.errors import LeaseLost, UnknownUow
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from chameleon_workflow.store import dialects, sql
from chameleon_workflow.store.work import LogEntry, Recorded, UowState
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text

SRC = Path(__file__).resolve().parents[2] / "src" / "chameleon_workflow"


# --- the seam's shape (no database) ----------------------------------------------------------


def test_the_engine_and_the_api_never_ask_which_database_they_run_on() -> None:
    pattern = re.compile(r"is_postgres|dialect\.name|dialect ==")
    found = [
        f"{path.relative_to(SRC)}:{n}"
        for layer in ("engine", "api")
        for path in sorted((SRC / layer).rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def test_only_the_dialects_module_reads_a_dialect_name_in_the_store() -> None:
    # database.py picks the dialect when it opens; types.py is SQLAlchemy's TypeDecorator hook
    allowed = {"database.py", "dialects/__init__.py", "types.py"}
    found = [
        str(path.relative_to(SRC / "store"))
        for path in sorted((SRC / "store").rglob("*.py"))
        if "dialect.name" in path.read_text(encoding="utf-8")
    ]
    assert set(found) <= allowed


def test_a_log_entry_is_exactly_the_log_tables_data_columns() -> None:
    """Add a column to ``interaction_log`` without adding it to LogEntry (or the reverse)
    and this fails: every statement that writes log rows is built from the two."""
    assert tuple(f.name for f in dataclasses.fields(LogEntry)) == sql.LOG_COLUMNS


def test_the_records_name_only_columns_their_tables_have() -> None:
    assert {f.name for f in dataclasses.fields(UowState)} <= set(sql.UOWS.c.keys())
    assert tuple(f.name for f in dataclasses.fields(Recorded)) == sql.data_columns(sql.OUTCOMES)


def test_a_record_ignores_columns_it_does_not_name() -> None:
    row: dict[str, Any] = {f.name: None for f in dataclasses.fields(UowState)}
    row |= {"id": uuid.uuid4(), "child_count": 0, "a_column_added_later": "ignored"}
    assert UowState.from_row(row).id == row["id"]


def test_an_unsupported_database_is_named_when_the_database_opens() -> None:
    with pytest.raises(ValueError, match="does not support the database 'mysql'"):
        dialects.for_name("mysql")


# --- statement counts on PostgreSQL ------------------------------------------------------------


@pytest.fixture
def pg_engine(pg_url: str, clock: FakeClock) -> Iterator[Engine]:
    from tests.conftest import empty_database

    empty_database(pg_url)
    eng = Engine(Settings(database_url=pg_url, scheduler_enabled=False), clock=clock)
    yield eng
    eng.close()


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement the engine's connection pool sends while the block runs."""
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    sa.event.listen(engine.db.engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        sa.event.remove(engine.db.engine, "before_cursor_execute", count)


def _small_flow(engine: Engine) -> Flow:
    """A flow whose first UOW waits in SmallQ, read by Small: a role with no gate."""
    flow = Flow(engine, fixture_text("routing_workflow.yml"), {"amount": 10})
    flow.submit(flow.take("Triage"), amount=10)  # Triage's inbound is gated
    return flow


def _second_engine(engine: Engine, clock: FakeClock) -> Engine:
    """Another process's engine on the same database: it made no checkout (no cache)."""
    return Engine(engine.settings, clock=clock)


@pytest.mark.postgres
def test_postgres_a_checkout_and_a_plain_submit_are_one_statement_each(
    pg_engine: Engine,
) -> None:
    flow = _small_flow(pg_engine)
    with statements(pg_engine) as sent:
        c = flow.take("Small")
    assert len(sent) == 1, sent
    with statements(pg_engine) as sent:
        flow.submit(c, amount=10)
    assert len(sent) == 1, sent


@pytest.mark.postgres
def test_postgres_a_plain_submit_from_another_process_reads_once_then_writes_once(
    pg_engine: Engine, clock: FakeClock
) -> None:
    flow = _small_flow(pg_engine)
    c = flow.take("Small")
    other = _second_engine(pg_engine, clock)
    try:
        other.topologies.of_instance(flow.instance_id)  # warm its topology cache
        with statements(other) as sent:
            out = other.runtime.submit(c.uow_id, flow.actor, {"amount": 10}, lease_id=c.lease_id)
        assert not out.replayed and len(sent) == 2, sent
    finally:
        other.close()


@pytest.mark.postgres
def test_postgres_a_lost_lease_costs_one_statement_and_says_why(
    pg_engine: Engine, clock: FakeClock
) -> None:
    flow = _small_flow(pg_engine)
    c = flow.take("Small")  # cached in this process
    clock.advance(301)
    assert pg_engine.maintenance.zombie_sweep().counts["reclaimed"] == 1
    with statements(pg_engine) as sent, pytest.raises(LeaseLost, match="reclaimed by the zombie"):
        flow.submit(c, amount=10)
    assert len(sent) == 1, sent
    other = _second_engine(pg_engine, clock)
    try:
        other.topologies.of_instance(flow.instance_id)
        with statements(other) as sent, pytest.raises(LeaseLost, match="reclaimed by the zombie"):
            other.runtime.submit(c.uow_id, flow.actor, {"amount": 10}, lease_id=c.lease_id)
        assert len(sent) == 1, sent
    finally:
        other.close()


@pytest.mark.postgres
def test_postgres_a_retried_submit_replays_from_one_statement(
    pg_engine: Engine, clock: FakeClock
) -> None:
    flow = _small_flow(pg_engine)
    c = flow.take("Small")
    first = flow.submit(c, amount=10)
    with statements(pg_engine) as sent:
        again = flow.submit(c, amount=10)
    assert again.replayed and again.interaction == first.interaction
    assert len(sent) == 1, sent


@pytest.mark.postgres
def test_postgres_an_unknown_uow_costs_one_statement(pg_engine: Engine) -> None:
    flow = Flow(pg_engine, fixture_text("routing_workflow.yml"), {"amount": 10})
    with statements(pg_engine) as sent, pytest.raises(UnknownUow):
        pg_engine.runtime.submit(uuid.uuid4(), flow.actor, {"amount": 1})
    assert len(sent) == 1, sent
