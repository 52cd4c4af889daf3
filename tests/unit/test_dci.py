"""Dynamic Context Injection, pure: reading injector rules, validating them, merging them."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from chameleon_workflow.domain.dci import ModelChoice, inject, merge
from chameleon_workflow.domain.definition import GuardianDef
from chameleon_workflow.domain.enums import GuardianType
from chameleon_workflow.domain.errors import DefinitionInvalid
from chameleon_workflow.domain.gates import evaluate_gate
from chameleon_workflow.domain.guardian_config import InjectionRule, Injector, read_injector
from chameleon_workflow.engine.templates import validate_yaml
from tests.flows import fixture_text

DCI_YAML = fixture_text("dci_workflow.yml")
ALLOWED = frozenset({"gpt-4o", "claude-large"})


def _injector(config: dict[str, Any]) -> Injector:
    injector, problems = read_injector("G", config)
    assert problems == [] and injector is not None
    return injector


def _rule(condition: str = "true", **payload: Any) -> dict[str, Any]:
    return {"condition": condition, "action": "mutate", "payload": payload}


# --- bad shapes are refused, naming the rule ----------------------------------------------------

BAD_CONFIGS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("no-rules", {}, ["non-empty 'rules'"]),
    ("empty-rules", {"rules": []}, ["non-empty 'rules'"]),
    ("rules-not-a-list", {"rules": {"a": 1}}, ["non-empty 'rules'"]),
    ("bad-scope", {"scope": "post_execution", "rules": [_rule(instructions="x")]}, ["scope"]),
    ("rule-not-a-mapping", {"rules": ["mutate"]}, ["rule 0 must be a mapping"]),
    ("unknown-action", {"rules": [{**_rule(instructions="x"), "action": "delete"}]},
     ["rule 0 has unknown action 'delete'", "mutate"]),
    ("missing-action", {"rules": [{"condition": "true", "payload": {"instructions": "x"}}]},
     ["rule 0 has unknown action None"]),
    ("missing-condition", {"rules": [{"action": "mutate", "payload": {"instructions": "x"}}]},
     ["rule 0 needs a 'condition'"]),
    ("blank-condition", {"rules": [_rule(" ", instructions="x")]}, ["rule 0 needs a 'condition'"]),
    ("number-condition", {"rules": [_rule(5, instructions="x")]},  # type: ignore[arg-type]
     ["rule 0 needs a 'condition'"]),
    ("unknown-rule-key", {"rules": [{**_rule(instructions="x"), "when": "a"}]},
     ["rule 0 has unknown key(s) when"]),
    ("no-payload", {"rules": [{"condition": "true", "action": "mutate"}]},
     ["rule 0 needs a 'payload'"]),
    ("empty-payload", {"rules": [_rule()]}, ["rule 0 needs a 'payload'"]),
    ("payload-list", {"rules": [{"condition": "true", "action": "mutate", "payload": [1]}]},
     ["rule 0 needs a 'payload'"]),
    ("unknown-payload-key", {"rules": [_rule(instructions="x", temperature=0.2)]},
     ["rule 0 payload has unknown key(s) temperature"]),
    ("model-number", {"rules": [_rule(model_override=4)]}, ["rule 0 payload 'model_override'"]),
    ("model-blank", {"rules": [_rule(model_override="")]}, ["rule 0 payload 'model_override'"]),
    ("instructions-list", {"rules": [_rule(instructions=["a"])]},
     ["rule 0 payload 'instructions'"]),
    ("fragments-string", {"rules": [_rule(knowledge_fragments="kb")]},
     ["rule 0 payload 'knowledge_fragments'"]),
    ("fragments-numbers", {"rules": [_rule(knowledge_fragments=["a", 2])]},
     ["rule 0 payload 'knowledge_fragments'"]),
    ("second-rule", {"rules": [_rule(instructions="x"), {**_rule(instructions="y"), "action": 1}]},
     ["rule 1 has unknown action 1"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "config", "words"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_a_bad_injector_config_is_refused_naming_the_rule(
    case: str, config: dict[str, Any], words: list[str]
) -> None:
    injector, problems = read_injector("G", config)
    assert injector is None
    text = "; ".join(problems)
    for word in words:
        assert word in text, (word, problems)


def _with_draft_config(mutate: Any) -> str:
    """The test workflow with the Draft injector's config changed by ``mutate``."""
    doc = yaml.safe_load(DCI_YAML)
    draft_in = next(c for c in doc["workflow"]["components"] if c["name"] == "Draft_In")
    mutate(draft_in["guardians"][0]["config"])
    return yaml.safe_dump(doc)


def _violations(text: str) -> list[str]:
    with pytest.raises(DefinitionInvalid) as caught:
        validate_yaml(text)
    return [str(v) for v in caught.value.violations]


def test_import_refuses_a_condition_that_does_not_parse_naming_guardian_and_rule() -> None:
    def mutate(config: dict[str, Any]) -> None:
        config["rules"][1]["condition"] = "amount >"

    found = _violations(_with_draft_config(mutate))
    assert len(found) == 1
    assert found[0].startswith("R11 Safe policy language: guardian 'Draft_Context'")
    assert "rule 1 condition 'amount >' does not parse" in found[0]


def test_import_refuses_a_condition_on_actor_id() -> None:
    def mutate(config: dict[str, Any]) -> None:
        config["rules"][0]["condition"] = "actor_id == 'bob'"

    [found] = _violations(_with_draft_config(mutate))
    assert "R11" in found and "rule 0 condition" in found and "actor_id" in found


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c["rules"][2].update(action="delete"), "rule 2 has unknown action 'delete'"),
        (lambda c: c.update(scope="post_execution"), "has scope 'post_execution'"),
        (lambda c: c["rules"][0]["payload"].update(seed=1), "rule 0 payload has unknown key(s)"),
        (lambda c: c["rules"][1].pop("condition"), "rule 1 needs a 'condition'"),
    ],
    ids=["action", "scope", "payload-key", "missing-condition"],
)
def test_import_refuses_bad_rule_shapes_under_r13(change: Any, words: str) -> None:
    [found] = _violations(_with_draft_config(change))
    assert found.startswith(
        "R13 Guardian configuration: guardian 'Draft_Context' on component 'Draft_In' "
    )
    assert words in found


def test_import_refuses_an_injector_on_an_outbound_component() -> None:
    doc = yaml.safe_load(DCI_YAML)
    draft_in = next(c for c in doc["workflow"]["components"] if c["name"] == "Draft_In")
    draft_out = next(c for c in doc["workflow"]["components"] if c["name"] == "Draft_Out")
    draft_out["guardians"] = draft_in.pop("guardians")
    [found] = _violations(yaml.safe_dump(doc))
    assert "R13" in found and "'Draft_Out'" in found and "move it to an INBOUND component" in found


def test_import_refuses_allowed_models_that_are_not_a_list_of_names() -> None:
    doc = yaml.safe_load(DCI_YAML)
    doc["workflow"]["ai_context"]["allowed_models"] = "gpt-4o"
    found = _violations(yaml.safe_dump(doc))
    assert len(found) == 2  # once per injector
    assert all("ai_context 'allowed_models' to be a list of model names" in f for f in found)


def test_the_example_workflow_is_valid_and_config_or_attributes_both_work() -> None:
    assert validate_yaml(DCI_YAML).warnings == ()
    defn = validate_yaml(DCI_YAML).definition
    review = next(c for c in defn.components if c.name == "Review_In")
    assert read_injector("R", review.guardians[1].config)[0] is not None  # spelt 'attributes'


def test_an_injector_never_rejects_work_as_a_gate() -> None:
    g = GuardianDef("G", GuardianType.CONDITIONAL_INJECTOR, {"rules": "nonsense"})
    assert evaluate_gate(g, {}, {}, datetime.now(UTC)).passed


# --- merging --------------------------------------------------------------------------------------


def test_no_matching_rule_injects_nothing() -> None:
    injector = _injector({"rules": [_rule("amount > 5", instructions="x")]})
    assert inject([injector], {"amount": 1}, ALLOWED, "fallback") is None


def test_a_condition_that_cannot_be_evaluated_does_not_apply_and_does_not_raise() -> None:
    injector = _injector(
        {"rules": [_rule("amount > 5", instructions="x"), _rule(instructions="y")]}
    )
    found = inject([injector], {"amount": "lots"}, ALLOWED, None)
    assert found is not None
    assert [r.rule for r in found.applied_rules] == [1]
    assert found.instructions == "y"


def test_rules_apply_in_order_and_the_last_allowed_model_wins() -> None:
    injector = _injector(
        {
            "scope": "pre_execution",
            "rules": [
                _rule(
                    model_override="claude-large",
                    instructions=" first \n",
                    knowledge_fragments=["a", "b"],
                ),
                _rule("false", model_override="never", instructions="skipped"),
                _rule(
                    model_override="gpt-4o",
                    instructions="second",
                    knowledge_fragments=["b", "c", "a"],
                ),
            ],
        }
    )
    found = inject([injector], {}, ALLOWED, "fallback")
    assert found is not None
    assert found.response() == {
        "model_id": "gpt-4o",
        "instructions": "first\n\nsecond",
        "knowledge_fragments": ["a", "b", "c"],
        "applied_rules": [
            {"guardian": "G", "rule": 0, "condition": "true"},
            {"guardian": "G", "rule": 2, "condition": "true"},
        ],
    }
    audit = found.audit()
    assert audit["guardians"] == ["G"]
    assert (audit["model_requested"], audit["model_choice"]) == ("gpt-4o", "overridden")
    assert (audit["overridden"], audit["fell_back"]) == (True, False)


def test_a_disallowed_model_falls_back_to_the_failover_model_or_to_none() -> None:
    injector = _injector({"rules": [_rule(model_override="gpt-4o"), _rule(model_override="x-9")]})
    with_failover = inject([injector], {}, ALLOWED, "safe-model")
    assert with_failover is not None
    assert (with_failover.model_id, with_failover.model_choice) == (
        "safe-model",
        ModelChoice.FAILOVER,
    )
    assert with_failover.audit()["fell_back"] is True
    without = inject([injector], {}, ALLOWED, None)
    assert without is not None
    assert (without.model_id, without.model_choice) == (None, ModelChoice.REFUSED)
    assert without.audit()["model_requested"] == "x-9"
    nothing_allowed = inject([injector], {}, frozenset(), None)
    assert nothing_allowed is not None and nothing_allowed.model_id is None


def test_rules_without_a_model_leave_the_model_alone() -> None:
    found = inject([_injector({"rules": [_rule(instructions="x")]})], {}, ALLOWED, "f")
    assert found is not None
    assert (found.model_id, found.model_choice) == (None, ModelChoice.NONE)


def test_several_injectors_apply_in_guardian_order() -> None:
    first = Injector("A", (InjectionRule(0, "true", instructions="from A"),))
    second = Injector("B", (InjectionRule(0, "true", instructions="from B"),))
    found = inject([first, second], {}, ALLOWED, None)
    assert found is not None
    assert found.instructions == "from A\n\nfrom B"
    assert found.audit()["guardians"] == ["A", "B"]


def test_conditions_see_the_environment() -> None:
    injector = _injector(
        {"rules": [_rule("status == 'FAILED' and tier in ['gold']", instructions="x")]}
    )
    assert inject([injector], {"status": "FAILED", "tier": "gold"}, ALLOWED, None) is not None
    assert inject([injector], {"status": "PENDING", "tier": "gold"}, ALLOWED, None) is None


texts = st.text(alphabet="abc ", min_size=0, max_size=4)
rules = st.builds(
    InjectionRule,
    index=st.just(0),
    condition=st.just("true"),
    model_override=st.none() | st.sampled_from(["gpt-4o", "claude-large", "other"]),
    instructions=st.none() | texts,
    knowledge_fragments=st.lists(st.sampled_from("pqrst"), max_size=4).map(tuple),
)


@given(st.lists(rules, max_size=6), st.none() | st.just("fallback"))
def test_merging_properties(picked: list[InjectionRule], failover: str | None) -> None:
    matched = [("G", r) for r in picked]
    before = copy.deepcopy(matched)
    found = merge(matched, ALLOWED, failover)
    assert matched == before
    if not picked:
        assert found is None
        return
    assert found is not None
    fragments = [f for r in picked for f in r.knowledge_fragments]
    assert list(found.knowledge_fragments) == list(dict.fromkeys(fragments))
    wanted = [r.instructions.strip() for r in picked if r.instructions and r.instructions.strip()]
    assert found.instructions == ("\n\n".join(wanted) if wanted else None)
    requested = [r.model_override for r in picked if r.model_override is not None]
    last = requested[-1] if requested else None
    assert found.model_requested == last
    if last is None:
        assert found.model_id is None
    elif last in ALLOWED:
        assert found.model_id == last
    else:
        assert found.model_id == failover
    assert len(found.applied_rules) == len(picked)
