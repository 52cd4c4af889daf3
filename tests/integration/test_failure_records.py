"""Every failure record has one schema, whoever wrote it, on both databases."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from chameleon_workflow.domain.failures import FIELDS, FailureKind, FailureRecord
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.store.maintenance.moves import failure_sql
from chameleon_workflow.store.tables import Uow
from chameleon_workflow.store.uow_list import UowFilter
from tests.conftest import FakeClock
from tests.flows import Flow, fixture_text


def _workflow() -> str:
    """routing_workflow.yml with a guarded genesis route and a stale-token limit on Inbox."""
    data = yaml.safe_load(fixture_text("routing_workflow.yml"))
    for c in data["workflow"]["components"]:
        if c["name"] == "Origin_Out":
            c["guardian"] = {"type": "CRITERIA_GATE", "config": {"condition": "amount < 1000000"}}
    for ix in data["workflow"]["interactions"]:
        if ix["name"] == "Inbox":
            ix["stale_token_limit_seconds"] = 200
    return yaml.safe_dump(data)


def _check_schema(record: Any) -> None:
    assert isinstance(record, dict) and set(record) == set(FIELDS)
    assert FailureKind(record["kind"])
    assert isinstance(record["reason"], str) and record["reason"]
    assert isinstance(record["code"], str) and record["code"]
    assert isinstance(record["details"], dict)
    assert isinstance(record["at"], str) and datetime.fromisoformat(record["at"]).tzinfo
    assert record["actor_id"] is None or uuid.UUID(record["actor_id"])
    assert record["role"] is None or isinstance(record["role"], str)
    assert record["guardian"] is None or isinstance(record["guardian"], str)


# --- unhappy paths -------------------------------------------------------------------------------


def test_a_batch_must_fill_exactly_the_fields_its_kind_names() -> None:
    engine = sa.create_engine("sqlite://")
    record = FailureRecord.stale_token(at=datetime.now().astimezone())
    with engine.connect() as conn:
        with pytest.raises(ValueError, match="fills"):
            failure_sql(conn, record, details={"limit": sa.literal(1)})
        with pytest.raises(ValueError, match="fills"):
            failure_sql(conn, record, role=sa.literal("x"), details={})


@pytest.mark.parametrize(
    ("sent", "kept"),
    [(None, {}), ({"a": 1}, {"a": 1}), ([1, 2], {"value": [1, 2]}), ("x", {"value": "x"})],
)
def test_explicit_details_are_always_an_object(sent: Any, kept: dict[str, Any]) -> None:
    now = datetime.now().astimezone()
    record = FailureRecord.explicit("E", sent, at=now, actor_id=uuid.uuid4(), role="R").as_json()
    _check_schema(record)
    assert record["details"] == kept and record["code"] == "E"


# --- the six writers -----------------------------------------------------------------------------


def test_every_writer_records_the_one_schema(engine: Engine, clock: FakeClock) -> None:
    flow = Flow(engine, _workflow(), {"amount": 5})
    times: dict[str, datetime] = {}

    times["genesis"] = clock.now
    no_route = flow.genesis(amount=10**7)

    routed = flow.take("Triage")
    clock.advance(1)
    times["submit"] = clock.now
    flow.submit(routed, amount="lots")

    rejected = flow.genesis(amount=-5)
    clock.advance(1)
    flow.genesis(amount=6)
    clock.advance(1)
    times["gate"] = clock.now
    reported = flow.take("Triage")
    clock.advance(1)
    times["explicit"] = clock.now
    engine.runtime.fail(
        reported.uow_id, flow.actor, "BAD_DATA", details={"field": "amount"},
        lease_id=reported.lease_id,
    )  # fmt: skip

    clock.advance(1)
    flow.genesis(amount=7)
    times["lease"] = clock.now
    silent = flow.take("Triage")
    stale = flow.genesis(amount=8)
    clock.advance(301)
    times["sweeps"] = clock.now
    assert engine.maintenance.zombie_sweep().counts["reclaimed"] == 1
    assert engine.maintenance.stale_token_sweep().counts["moved"] == 1

    records = {
        "genesis": flow.uow(no_route).uow.failure,
        "submit": flow.uow(routed.uow_id).uow.failure,
        "gate": flow.uow(rejected).uow.failure,
        "explicit": flow.uow(reported.uow_id).uow.failure,
        "zombie": flow.uow(silent.uow_id).uow.failure,
        "stale": flow.uow(stale).uow.failure,
    }
    for record in records.values():
        _check_schema(record)

    topo = engine.topologies.of_instance(flow.instance_id)
    inbox = str(topo.interaction_ids["Inbox"])
    actor = str(flow.actor)
    expected = {
        "genesis": ("routing_error", "routing_error", {"during": "genesis"}, None, "Origin", None),
        "submit": ("routing_error", "routing_error", {"during": "submit"}, actor, "Triage", None),
        "gate": (
            "gate_rejection", "gate_rejection", {"from_interaction_id": inbox}, actor, "Triage",
            records["gate"]["guardian"],
        ),
        "explicit": ("explicit", "BAD_DATA", {"field": "amount"}, actor, "Triage", None),
    }  # fmt: skip
    for name, (kind, code, details, actor_id, role, guardian) in expected.items():
        r = records[name]
        assert (r["kind"], r["code"], r["details"]) == (kind, code, details), name
        assert (r["actor_id"], r["role"], r["guardian"]) == (actor_id, role, guardian), name
        assert r["at"] == times[name].isoformat(), name
    assert records["gate"]["guardian"] and "amount" in records["gate"]["reason"]

    zombie, stale_record = records["zombie"], records["stale"]
    assert (zombie["kind"], zombie["code"], zombie["actor_id"], zombie["role"]) == (
        "zombie", "zombie", actor, None
    )  # fmt: skip
    assert zombie["details"] == {
        "timeout_seconds": 300,
        "last_seen": zombie["details"]["last_seen"],
        "from_interaction_id": inbox,
    }
    assert datetime.fromisoformat(zombie["details"]["last_seen"]) == times["lease"]
    assert (stale_record["kind"], stale_record["actor_id"], stale_record["role"]) == (
        "stale_token", None, None
    )  # fmt: skip
    assert stale_record["details"] == {"limit": 200, "waited": 301, "from_interaction_id": inbox}
    assert zombie["at"] == stale_record["at"] == times["sweeps"].isoformat()
    assert zombie["guardian"] is stale_record["guardian"] is None


OLD_RECORDS = [
    ({"kind": "explicit", "error_code": "OLD", "details": None, "role": "Triage"}, "OLD", "OLD"),
    ({"kind": "stale_token", "limit": 120, "waited": 150, "from_interaction_id": "{inbox}"},
     "stale_token", "waited 150 s in 'Inbox'"),
    ({"kind": "zombie", "timeout_seconds": 1, "last_seen": "x", "from_interaction_id": "{inbox}"},
     "zombie", "timeout 1 s"),
]  # fmt: skip


@pytest.mark.parametrize(("stored", "code", "said"), OLD_RECORDS)
def test_the_listing_still_reads_records_written_before_the_schema(
    engine: Engine, stored: dict[str, Any], code: str, said: str
) -> None:
    flow = Flow(engine, _workflow(), {"amount": 5})
    inbox = str(engine.topologies.of_instance(flow.instance_id).interaction_ids["Inbox"])
    record = {k: v.format(inbox=inbox) if isinstance(v, str) else v for k, v in stored.items()}
    U = Uow.__table__
    with engine.db.begin() as conn:
        conn.execute(
            sa.update(U).where(U.c.id == flow.first_uow).values(status="FAILED", failure=record)
        )
    (item,) = engine.instances.list_uows(UowFilter(instance_id=flow.instance_id)).items
    failure = item["failure"]
    assert (failure["kind"], failure["code"]) == (stored["kind"], code)
    assert said in failure["reason"] and failure["record"] == record
    if "from_interaction_id" in stored:
        assert failure["interaction"] == "Inbox"
