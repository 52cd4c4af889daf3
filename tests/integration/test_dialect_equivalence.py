"""The same scenarios leave the same rows on SQLite and on PostgreSQL.

Each scenario drives one workflow instance through the public engine API with a fake clock
that starts at the same instant on both databases; afterwards every row of ``uows``,
``uow_attributes``, ``interaction_log``, ``memory_injections``, ``lease_outcomes`` and
``memories`` is read back, normalised (:mod:`tests.equivalence`) and compared field by
field, and so is everything the engine returned on the way. On PostgreSQL the engine takes
one-statement paths for ungated checkouts and plain submits, and a submit by the Engine
that made the checkout uses its lease cache: each scenario also runs there with a second
Engine making the submits (it reads the UOW instead).

No two waiting UOWs of one queue may share ``entered_at`` (the driver checks before each
checkout): which of them a checkout takes is up to the database, not part of the contract,
so the clock moves between the steps that create work.

Two differences the comparison of Python values cannot see are checked at the end: SQL NULL
against JSON ``null`` in JSON columns, and the order of injected memories on a PostgreSQL
database whose collation is not C (both were real differences, fixed in the store).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from chameleon_workflow.store import migrate
from chameleon_workflow.store.database import Database
from tests.conftest import PG_ADMIN_URL, FakeClock, empty_database
from tests.equivalence import WORKFLOW, Driver, Snapshot, differences, snapshot

pytestmark = pytest.mark.postgres

START = datetime(2026, 3, 1, 9, 0, 0, 123456, tzinfo=UTC)

# Values whose JSON round trip could differ between the databases.
RICH = {
    "amount": 11,
    "note": 'café ☕ "quoted" \\ back',
    "ratio": 0.1,
    "big": 2**53 + 1,
    "negative": -2.5e-7,
    "nested": {"b": [1, 2.5, None, "x"], "a": True, "": False},
    "empty": {},
    "nothing": None,
}


# --- scenarios --------------------------------------------------------------------------------


def plain_submit(d: Driver) -> None:
    """A BETA role with one way out sends the result on; OMEGA completes the UOW."""
    d.instantiate()
    d.clock.advance(1)
    triage = d.take("Triage")
    assert d.submit(triage, {"amount": 10}).versions_written == 0
    d.clock.advance(2)
    small = d.take("Small")  # ungated: PostgreSQL's one-statement checkout
    d.clock.advance(3)
    d.heartbeat(small)
    d.clock.advance(4)
    out = d.submit(small, RICH, reasoning="checked by hand")
    assert (out.status, out.interaction, out.versions_written) == ("PENDING", "Done", 8)
    d.clock.advance(5)
    final = d.take("Finish")
    assert d.submit(final, {"closed": True}).status == "COMPLETED"


def routed_submit(d: Driver) -> None:
    """Triage's conditional routes pick a queue by amount; no matching route fails into Ate."""
    d.instantiate()
    for amount in (5000, 3):
        d.clock.advance(1)
        d.genesis(amount=amount)
    results = []
    for attributes in ({"amount": 10, "checked": True}, {"amount": 5000}, {"amount": "lots"}):
        d.clock.advance(1)
        c = d.take("Triage")
        out = d.submit(c, attributes, reasoning=f"saw {attributes['amount']}")
        results.append((out.status, out.interaction, out.versions_written))
    assert results == [("PENDING", "SmallQ", 1), ("PENDING", "BigQ", 0), ("FAILED", "Errors", 1)]
    for role in ("Big", "Small"):
        d.clock.advance(1)
        c = d.take(role)
        assert d.submit(c, {"amount": 1, "by": role}).interaction == "Done"


def gate_rejection(d: Driver) -> None:
    """A gate on Triage's inbound interaction sends failing UOWs to Ate at checkout."""
    d.instantiate()
    first = d.take("Triage")
    rejected = []
    for context in ({"amount": -5}, {"note": "no amount"}):
        d.clock.advance(1)
        rejected.append(d.genesis(**context))
        d.clock.advance(1)
        assert d.checkout("Triage") is None
    assert [d.where(r) for r in rejected] == [("FAILED", "Errors")] * 2
    d.clock.advance(1)
    fix = d.take("Fixer")
    assert fix.uow_id == rejected[0] and fix.failure is not None
    assert d.submit(fix, {"amount": 20}, reasoning="fixed the sign").interaction == "Inbox"
    d.clock.advance(1)
    give_up = d.take("Fixer")
    assert d.fail(give_up, "GIVE_UP", {"why": "no amount"}).status == "ABANDONED"
    d.clock.advance(1)
    d.submit(first, {"amount": 10})
    d.clock.advance(1)
    again = d.take("Triage")
    assert again.uow_id == rejected[0]
    assert d.submit(again, {"amount": 20}).interaction == "SmallQ"


def lost_lease(d: Driver) -> None:
    """Late writes after a reclaim are refused; a retried request replays its outcome."""
    d.instantiate()
    late = d.take("Triage")
    d.clock.advance(301)
    assert d.sweep()["reclaimed"] == 1
    d.clock.advance(1)
    d.refused("late submit", lambda: d.submit(late, {"amount": 1}))
    d.refused("late heartbeat", lambda: d.heartbeat(late))
    d.refused("late failure", lambda: d.fail(late, "E1"))

    d.genesis(amount=7)
    d.clock.advance(1)
    used = d.take("Triage")
    body = {"amount": 7, "seen": True}
    d.clock.advance(1)
    first = d.submit(used, body, reasoning="once")
    d.clock.advance(1)
    again = d.submit(used, body, reasoning="once")
    blind = d.submit(used, body, reasoning="once", with_lease=False)
    assert again.replayed and blind.replayed and not first.replayed
    d.refused("another body on a used lease", lambda: d.submit(used, {"amount": 8}))

    d.genesis(amount=8)
    d.clock.advance(1)
    failed = d.take("Triage")
    d.fail(failed, "BAD_DATA", {"field": "amount"})
    assert d.fail(failed, "BAD_DATA", {"field": "amount"}).replayed

    other = d.new_actor("other")
    d.genesis(amount=9)
    d.clock.advance(1)
    held = d.take("Triage")
    d.refused("someone else's submit", lambda: d.submit(held, {"amount": 1}, actor=other))
    assert d.submit(held, {"amount": 9}).interaction == "SmallQ"


def decomposition(d: Driver) -> None:
    """A submit with children parks the base; the children are worked; OMEGA finalizes."""
    d.instantiate()
    base = d.take("Triage")
    kids = [{"amount": 5, "line": 0}, {"amount": 5000, "line": 1}, {"amount": "lots", "line": 2}]
    out = d.submit(base, {"amount": 10}, children=kids, reasoning="split")
    assert (out.status, out.interaction, len(out.children)) == ("PENDING", "Done", 3)
    assert [d.where(k)[1] for k in out.children] == ["SmallQ", "BigQ", "Errors"]
    d.clock.advance(1)
    assert d.checkout("Finish") is None
    small = d.take("Small")
    learned = {"key": "hint", "value": "small ones are easy", "confidence": 0.5}
    d.submit(small, {"amount": 6, "_learned_rule": learned})
    d.clock.advance(1)
    d.submit(d.take("Big"), {"done": True})
    d.clock.advance(1)
    assert d.submit(d.take("Fixer"), {"amount": 8}).interaction == "Inbox"
    d.clock.advance(1)
    assert d.submit(d.take("Triage"), {"amount": 8}).interaction == "SmallQ"
    d.clock.advance(1)
    d.submit(d.take("Small"), {"done": True})
    d.clock.advance(1)
    final = d.take("Finish")
    assert final.uow_id == base.uow_id and len(final.children) == 3
    assert d.submit(final, {"total": 3}).status == "COMPLETED"
    assert {d.where(k)[0] for k in out.children} == {"COMPLETED"}


def _governed() -> str:
    """routing_workflow.yml requeueing zombies once; Big times out sooner, Small fails them."""
    data = yaml.safe_load(WORKFLOW)
    data["workflow"].update(zombie_policy="requeue", max_reclaims=1)
    for role in data["workflow"]["roles"]:
        role.update(
            {"Big": {"zombie_timeout_seconds": 60}, "Small": {"zombie_policy": "fail"}}.get(
                role["name"], {}
            )
        )
    return yaml.safe_dump(data)


def zombie_reclaim(d: Driver) -> None:
    """Leases without heartbeats are reclaimed by each role's timeout and policy."""
    d.instantiate(_governed())
    d.clock.advance(1)
    to_small = d.genesis(amount=5)
    d.clock.advance(1)
    stays = d.genesis(amount=7)
    for amount in (5000, 5):
        d.clock.advance(1)
        d.submit(d.take("Triage"), {"amount": amount})
    d.clock.advance(1)
    triage = d.take("Triage")
    big, small = d.take("Big"), d.take("Small")
    assert (triage.uow_id, small.uow_id) == (stays, to_small)
    d.clock.advance(100)
    d.sweep(dry_run=True)
    assert d.sweep()["requeued"] == 1  # Big's 60 s
    d.clock.advance(201)
    assert d.sweep(batch_size=1)["reclaimed"] == 2
    assert (d.where(stays), d.where(to_small)) == (("PENDING", "Inbox"), ("FAILED", "Timeouts"))
    d.refused("reclaimed heartbeat", lambda: d.heartbeat(big))
    again = d.take("Big")
    d.clock.advance(61)
    assert d.sweep()["requeued"] == 0  # past max_reclaims: FAILED into Chronos
    assert d.where(again.uow_id) == ("FAILED", "Timeouts")
    d.clock.advance(1)
    timer = d.take("Timer")
    assert timer.uow_id == to_small
    assert d.submit(timer, {"escalated": True}).interaction == "Errors"


def _limited() -> str:
    """routing_workflow.yml with stale-token limits: 120 s on Inbox, 300 s elsewhere."""
    data = yaml.safe_load(WORKFLOW)
    data["workflow"]["stale_token_limit_seconds"] = 300
    for interaction in data["workflow"]["interactions"]:
        if interaction["name"] == "Inbox":
            interaction["stale_token_limit_seconds"] = 120
    return yaml.safe_dump(data)


def stale_tokens(d: Driver) -> None:
    """Work waiting past its interaction's limit goes to Chronos; a child's parent is told."""
    d.instantiate(_limited())
    d.clock.advance(100)
    fresh = d.genesis(amount=5)
    d.clock.advance(21)
    d.stale_sweep(dry_run=True)
    assert d.stale_sweep()["moved"] == 1
    assert (d.where(d.flow.first_uow), d.where(fresh)) == (
        ("FAILED", "Timeouts"),
        ("PENDING", "Inbox"),
    )
    base = d.take("Triage")
    out = d.submit(base, {"amount": 5}, children=[{"amount": 5}, {"amount": 5000}])
    d.clock.advance(100)
    d.submit(d.take("Big"), {"amount": 5001})
    d.clock.advance(201)
    assert d.stale_sweep(batch_size=1)["moved"] == 1  # the child left waiting in SmallQ
    assert [d.where(k) for k in out.children] == [("FAILED", "Timeouts"), ("PENDING", "Done")]
    d.clock.advance(1)
    timer = d.take("Timer")
    assert timer.uow_id == d.flow.first_uow and timer.failure is not None
    assert d.submit(timer, {"escalated": True}).interaction == "Errors"


def memory_injection(d: Driver) -> None:
    """Global and personal memories are injected at checkout and the injection recorded."""
    d.instantiate()
    other = d.new_actor("other")
    d.remember("Triage", "tone", "formal")
    d.remember("Triage", "limit", {"max": 100, "currency": "EUR"})
    d.remember("Triage", "tone", "casual", actor=d.actor)
    d.remember("Triage", "secret", "other's", actor=other)
    bad = d.remember("Triage", "bad", "advice")
    d.engine.toxic.mark(bad, "wrong", by="tester")
    for key, value in (("Zeta", 1), ("alpha", 2), ("_under", 3)):
        d.remember("Small", key, value)
    d.remember("Small", "alpha", 20, actor=d.actor)
    d.clock.advance(3600)
    triage = d.take("Triage")  # gated: injected after the gate
    assert triage.context == {"limit": {"max": 100, "currency": "EUR"}, "tone": "casual"}
    learned = {"key": "hint", "value": "check totals"}
    d.submit(triage, {"amount": 10, "_learned_rule": learned})
    d.clock.advance(30)
    small = d.take("Small")  # ungated: PostgreSQL's one-statement checkout injects
    assert small.context == {"Zeta": 1, "_under": 3, "alpha": 20}
    d.submit(small, {"done": True})
    d.remember("Triage", "tone", "very formal")  # version 2 of the global
    d.remember("Small", "alpha", 21, actor=d.actor)
    d.genesis(amount=3)
    d.clock.advance(1)
    d.genesis(amount=4)
    d.clock.advance(19)  # within the minute: last_accessed_at is not rewritten
    d.submit(d.take("Triage"), {"amount": 3})
    d.clock.advance(60)
    d.submit(d.take("Triage"), {"amount": 4})
    d.clock.advance(1)
    d.take("Small")
    final = d.take("Finish")  # no memories: no injection row
    assert final.injected == []


SCENARIOS: dict[str, Callable[[Driver], None]] = {
    f.__name__: f
    for f in (
        plain_submit,
        routed_submit,
        gate_rejection,
        lost_lease,
        decomposition,
        zombie_reclaim,
        stale_tokens,
        memory_injection,
    )
}


# --- running and comparing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    rows: Snapshot
    seen: Any


Run = Callable[..., Result]


@pytest.fixture
def run(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Run]:
    """Run a scenario on a fresh database of either kind; returns its rows and what the
    engine returned."""
    numbers = itertools.count()

    def fresh(database: str) -> str:
        if database == "sqlite":
            path = tmp_path / f"run{next(numbers)}.db"
            shutil.copy(sqlite_template, path)
            return f"sqlite:///{path}"
        if database == "postgresql-icu":
            return str(request.getfixturevalue("icu_pg_url"))  # used once: already empty
        url: str = request.getfixturevalue("pg_url")
        empty_database(url)
        return url

    def run(
        database: str,
        scenario: Callable[[Driver], None],
        *,
        second_engine: bool = False,
        null_kinds: bool = False,
    ) -> Result:
        clock = FakeClock()
        clock.now = START
        settings = Settings(database_url=fresh(database), scheduler_enabled=False)
        engines = [Engine(settings, clock=clock)]
        if second_engine:
            engines.append(Engine(settings, clock=clock))
        try:
            d = Driver(engines[0], engines[-1], clock)
            scenario(d)
            rows = snapshot(engines[0].db.engine, d.labels, null_kinds=null_kinds)
            return Result(rows, d.labels.normalise(d.seen, assign=True))
        finally:
            for engine in engines:
                engine.close()

    yield run


def _mismatches(left: Result, right: Result, names: tuple[str, str]) -> list[str]:
    lines = differences(left.rows, right.rows, names)
    for i, (a, b) in enumerate(itertools.zip_longest(left.seen, right.seen)):
        if a != b:
            lines.append(f"engine result #{i}: {names[0]}={a!r} {names[1]}={b!r}")
    return lines


ENGINES = [
    pytest.param(False, id="one-engine"),
    pytest.param(True, id="second-engine-submits"),
]


@pytest.mark.parametrize("second_engine", ENGINES)
@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_postgresql_leaves_the_rows_sqlite_leaves(
    run: Run, scenario: Callable[[Driver], None], second_engine: bool
) -> None:
    lite = run("sqlite", scenario)
    pg = run("postgresql", scenario, second_engine=second_engine)
    assert lite.rows["uows"] and lite.rows["interaction_log"]
    mismatches = _mismatches(lite, pg, ("sqlite", "postgresql"))
    assert not mismatches, "\n".join(mismatches)


def test_a_second_engine_on_sqlite_changes_nothing(run: Run) -> None:
    """The premise of the second-engine runs: on one database, who submits is invisible."""
    for scenario in (plain_submit, lost_lease):
        one, two = run("sqlite", scenario), run("sqlite", scenario, second_engine=True)
        assert not _mismatches(one, two, ("one engine", "two engines"))


def test_the_comparison_reports_each_differing_field(run: Run) -> None:
    lite = run("sqlite", plain_submit)
    changed = {name: [dict(r) for r in rows] for name, rows in lite.rows.items()}
    changed["uow_attributes"][0]["value"] = "other"
    del changed["interaction_log"][-1]
    lines = differences(lite.rows, changed, ("a", "b"))
    assert len(lines) == 2
    assert lines[0].startswith("uow_attributes[uow_id=uow:0, key=amount, version=1].value: a=")
    assert "interaction_log[" in lines[1] and ": only on a: " in lines[1]


# Where a JSON column's value is None, both databases hold SQL NULL (the JSON types are
# declared ``none_as_null``); the JSON text 'null' would read back as None too, so only a
# query with ``IS NULL`` could tell them apart. This compares the kinds of null directly.
@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_json_null_and_sql_null_are_stored_alike(
    run: Run, scenario: Callable[[Driver], None]
) -> None:
    lite = run("sqlite", scenario, null_kinds=True)
    pg = run("postgresql", scenario, null_kinds=True)
    mismatches = _mismatches(lite, pg, ("sqlite", "postgresql"))
    assert not mismatches, "\n".join(mismatches)


@pytest.fixture
def icu_pg_url(pg_url: str) -> Iterator[str]:
    """A migrated PostgreSQL database whose text collation is ICU's en-US, not C."""
    name = f"{sa.engine.make_url(pg_url).database}_icu"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    create = f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(create)
    except sa.exc.DBAPIError as exc:  # PostgreSQL before 15, or built without ICU
        admin.dispose()
        pytest.skip(f"no ICU database: {str(exc).splitlines()[0]}")
    url = sa.engine.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    migrate.upgrade(db)
    db.dispose()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


# The injected memories (the checkout's ``injected`` list and the parallel ``memory_ids`` /
# ``versions`` arrays) are listed by key in code point order on both databases, whatever
# PostgreSQL's collation: here a database created with ICU's en-US, under which a plain
# ``ORDER BY key`` would give '_under', 'alpha', 'Zeta'.
def test_injected_memories_keep_their_order_under_another_collation(run: Run) -> None:
    lite = run("sqlite", memory_injection)
    pg = run("postgresql-icu", memory_injection)
    mismatches = _mismatches(lite, pg, ("sqlite", "postgresql en-US"))
    assert not mismatches, "\n".join(mismatches)
