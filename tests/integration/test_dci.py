"""Dynamic Context Injection at checkout, on both databases (unhappy paths first)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from chameleon_workflow.domain.errors import DefinitionInvalid, LeaseLost
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from chameleon_workflow.store.tables import InteractionLog
from tests.conftest import FakeClock, empty_database
from tests.flows import Flow, fixture_text, statements

L = InteractionLog.__table__
DCI_YAML = fixture_text("dci_workflow.yml")
FAILOVER = "safe-model"


@pytest.fixture
def flow(engine: Engine) -> Flow:
    return Flow(engine, DCI_YAML, {"amount": 1, "priority": "low"})


def _dci_rows(engine: Engine, uow_id: uuid.UUID) -> list[Any]:
    with engine.db.connect() as conn:
        return list(
            conn.execute(
                sa.select(L)
                .where(L.c.uow_id == uow_id, L.c.event == "dci_applied")
                .order_by(L.c.id)
            )
        )


def _events(engine: Engine, uow_id: uuid.UUID) -> list[str]:
    with engine.db.connect() as conn:
        return list(conn.scalars(sa.select(L.c.event).where(L.c.uow_id == uow_id).order_by(L.c.id)))


# --- import: bad rules change nothing ---------------------------------------------------------


def _bad(change: Any) -> str:
    doc = yaml.safe_load(DCI_YAML)
    draft_in = next(c for c in doc["workflow"]["components"] if c["name"] == "Draft_In")
    change(draft_in["guardians"][0]["config"])
    return yaml.safe_dump(doc)


BAD_RULES = [
    ("action", lambda c: c["rules"][1].update(action="replace"), "R13", "rule 1"),
    ("condition", lambda c: c["rules"][2].update(condition="region =="), "R11", "rule 2"),
    ("blank-condition", lambda c: c["rules"][0].update(condition=""), "R13", "rule 0"),
    ("payload-type", lambda c: c["rules"][0]["payload"].update(instructions=3), "R13", "rule 0"),
    ("payload-key", lambda c: c["rules"][2]["payload"].update(tools=["x"]), "R13", "rule 2"),
    ("scope", lambda c: c.update(scope="post_execution"), "R13", "scope"),
]


@pytest.mark.parametrize(
    ("case", "change", "rule", "words"), BAD_RULES, ids=[b[0] for b in BAD_RULES]
)
def test_import_refuses_bad_injector_rules_and_changes_nothing(
    engine: Engine, case: str, change: Any, rule: str, words: str
) -> None:
    before = engine.templates.list()
    with pytest.raises(DefinitionInvalid) as caught:
        engine.templates.import_yaml(_bad(change))
    [violation] = caught.value.violations
    assert violation.rule == rule
    assert "guardian 'Draft_Context'" in str(violation) and words in str(violation)
    assert engine.templates.list() == before


# --- checkout ---------------------------------------------------------------------------------


def test_no_matching_rule_gives_no_dci_and_no_log_row(flow: Flow) -> None:
    c = flow.take("Draft")
    assert c.dci is None
    assert _dci_rows(flow.engine, c.uow_id) == []
    assert _events(flow.engine, c.uow_id) == ["genesis", "checkout"]


def test_an_injector_never_rejects_work_even_when_a_condition_cannot_be_evaluated(
    flow: Flow,
) -> None:
    flow.take("Draft")  # the first UOW is out of the way
    odd = flow.genesis(amount="lots", priority=None, region=["eu"])
    c = flow.take("Draft")
    assert c.uow_id == odd and c.dci is None
    assert flow.where(odd) == ("ACTIVE", "Inbox")


def test_matching_rules_apply_in_order_and_the_history_records_them(
    flow: Flow, clock: FakeClock
) -> None:
    flow.take("Draft")
    clock.advance(5)
    uow_id = flow.genesis(amount=5000, priority="high", region="us")
    c = flow.take("Draft")
    assert c.uow_id == uow_id
    assert c.dci == {
        "model_id": "gpt-4o",
        "instructions": "Be careful.\n\nCheck the invoice total.",
        "knowledge_fragments": ["kb:escalation", "kb:tone", "kb:invoices"],
        "applied_rules": [
            {"guardian": "Draft_Context", "rule": 0, "condition": "priority == 'high'"},
            {"guardian": "Draft_Context", "rule": 1, "condition": "amount > 1000"},
        ],
    }
    [row] = _dci_rows(flow.engine, uow_id)
    assert (row.actor_id, row.role_id) == (flow.actor, flow.roles["Draft"])
    assert (row.from_status, row.to_status) == ("ACTIVE", "ACTIVE")
    assert row.at.replace(tzinfo=None) == clock.now.replace(tzinfo=None)
    assert row.details == {
        "guardians": ["Draft_Context"],
        **c.dci,
        "model_requested": "gpt-4o",
        "model_choice": "overridden",
        "overridden": True,
        "fell_back": False,
    }
    assert _events(flow.engine, uow_id) == ["genesis", "checkout", "dci_applied"]
    # the history a client reads shows it too
    history = flow.engine.instances.history(uow_id)
    assert "dci_applied" in [t.event for t in history.transitions]


def test_a_disallowed_model_without_a_failover_is_not_overridden_and_the_audit_says_so(
    flow: Flow,
) -> None:
    flow.take("Draft")
    uow_id = flow.genesis(amount=5000, region="eu")
    c = flow.take("Draft")
    assert c.dci is not None
    assert c.dci["model_id"] is None
    assert [r["rule"] for r in c.dci["applied_rules"]] == [1, 2]
    assert c.dci["knowledge_fragments"] == ["kb:tone", "kb:invoices", "kb:gdpr"]
    [row] = _dci_rows(flow.engine, uow_id)
    assert row.details["model_requested"] == "local-llm"
    assert row.details["model_choice"] == "refused"
    assert (row.details["overridden"], row.details["fell_back"]) == (False, False)


@pytest.fixture
def failover_engine(settings: Settings, clock: FakeClock) -> Iterator[Engine]:
    eng = Engine(settings.model_copy(update={"dci_failover_model": FAILOVER}), clock=clock)
    yield eng
    eng.close()


def test_a_disallowed_model_falls_back_to_the_configured_failover(
    failover_engine: Engine,
) -> None:
    flow = Flow(failover_engine, DCI_YAML, {"priority": "high", "region": "eu", "amount": 1})
    c = flow.take("Draft")
    assert c.dci is not None
    assert c.dci["model_id"] == FAILOVER
    assert c.dci["instructions"] == "Be careful."
    [row] = _dci_rows(failover_engine, c.uow_id)
    assert (row.details["model_requested"], row.details["model_id"]) == ("local-llm", FAILOVER)
    assert (row.details["model_choice"], row.details["fell_back"]) == ("failover", True)


def test_an_allowed_model_is_not_replaced_by_the_failover(failover_engine: Engine) -> None:
    flow = Flow(failover_engine, DCI_YAML, {"priority": "high", "amount": 1})
    c = flow.take("Draft")
    assert c.dci is not None and c.dci["model_id"] == "claude-large"


def test_a_gated_role_injects_after_its_gates_and_conditions_see_the_status_before_checkout(
    flow: Flow,
) -> None:
    flow.submit(flow.take("Draft"), amount=-5)  # the Review gate will reject this one
    big = flow.genesis(amount=2000)
    flow.submit(flow.take("Draft"), amount=2000)
    c = flow.take("Review")
    assert c.uow_id == big
    assert c.dci is not None
    assert c.dci["instructions"] == "Second pair of eyes."
    assert c.dci["applied_rules"] == [
        {
            "guardian": "Review_Context",
            "rule": 0,
            "condition": "status == 'PENDING' and amount > 1000",
        }
    ]
    # one row for Draft's checkout (amount > 1000), one for Review's
    rows = _dci_rows(flow.engine, big)
    assert [r.details["guardians"] for r in rows] == [["Draft_Context"], ["Review_Context"]]
    assert rows[1].role_id == flow.roles["Review"]
    assert _dci_rows(flow.engine, flow.first_uow) == []
    assert flow.where(flow.first_uow) == ("FAILED", "Errors")


def test_each_checkout_of_a_uow_is_recorded(flow: Flow) -> None:
    flow.take("Draft")
    uow_id = flow.genesis(priority="high")
    first = flow.take("Draft")
    flow.engine.runtime.fail(uow_id, flow.actor, "retry", lease_id=first.lease_id)
    assert flow.where(uow_id)[1] == "Errors"
    # Fixer sends it back to Inbox; the next Draft checkout injects again
    flow.submit(flow.take("Fixer"))
    again = flow.take("Draft")
    assert again.uow_id == uow_id and again.dci == first.dci
    assert len(_dci_rows(flow.engine, uow_id)) == 2


# --- the fast path stays fast on PostgreSQL ---------------------------------------------------


@pytest.fixture
def pg_engine(pg_url: str, clock: FakeClock) -> Iterator[Engine]:
    empty_database(pg_url)
    eng = Engine(Settings(database_url=pg_url, scheduler_enabled=False), clock=clock)
    yield eng
    eng.close()


@pytest.mark.postgres
def test_postgres_an_injector_keeps_the_one_statement_claim(pg_engine: Engine) -> None:
    flow = Flow(pg_engine, DCI_YAML, {"amount": 1})
    with statements(pg_engine) as sent:
        c = flow.take("Draft")
    assert c.dci is None
    assert len(sent) == 1, sent  # nothing applied: the claim alone
    flow.genesis(priority="high")
    with statements(pg_engine) as sent:
        c = flow.take("Draft")
    assert c.dci is not None
    assert len(sent) == 2, sent  # the claim and the dci_applied log row
    assert "interaction_log" in sent[1]


# --- the documented example does what docs/workflows.md says ---------------------------------


def _docs_example() -> str:
    text = (Path(__file__).resolve().parents[2] / "docs" / "workflows.md").read_text("utf-8")
    section = text.split("### Dynamic Context Injection (CONDITIONAL_INJECTOR)", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_documented_example_injects_as_documented(failover_engine: Engine) -> None:
    flow = Flow(failover_engine, _docs_example(), {"urgency": "high", "amount": 25000})
    c = flow.take("Assess")
    assert c.dci is not None
    assert c.dci["model_id"] == "gpt-4o"
    assert c.dci["instructions"] == (
        "Answer within the hour; escalate anything unclear.\n\n"
        "Check the amount against the policy limit."
    )
    assert c.dci["knowledge_fragments"] == ["kb:escalation", "kb:tone", "kb:limits"]
    assert [r["rule"] for r in c.dci["applied_rules"]] == [0, 1]
    eu = flow.genesis(region="eu")
    c = flow.take("Assess")
    assert c.uow_id == eu and c.dci is not None and c.dci["model_id"] == FAILOVER
    assert _dci_rows(failover_engine, eu)[0].details["model_choice"] == "failover"


# --- leases: a dci_applied row does not end the lease ----------------------------------------


def test_a_reclaimed_injected_lease_still_says_it_was_reclaimed(
    flow: Flow, clock: FakeClock
) -> None:
    flow.take("Draft")
    flow.genesis(priority="high")
    c = flow.take("Draft")
    assert c.dci is not None
    clock.advance(301)
    flow.engine.maintenance.zombie_sweep()
    with pytest.raises(LeaseLost, match="reclaimed by the zombie sweep") as lost:
        flow.submit(c, done=True)
    assert lost.value.details["ended_by"] == "reclaim"
