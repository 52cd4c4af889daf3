"""YAML aliases and merge keys are sized before the document is built, against a budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from chameleon_workflow.domain.errors import DefinitionInvalid
from chameleon_workflow.domain.parsing import parse_workflow_yaml
from chameleon_workflow.domain.yaml_budget import Expansion, YamlBudget, expansion
from tests.unit.test_validation import MINIMAL

HOSTILE = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"
BIG = Expansion(10**12, 10**12)
BUDGET = YamlBudget(
    max_nodes=100_000,
    max_expansion=10,
    nodes_setting="CHAMELEON_YAML_MAX_NODES",
    expansion_setting="CHAMELEON_YAML_MAX_EXPANSION",
)


def refusal(text: str, budget: YamlBudget = BUDGET) -> str:
    with pytest.raises(DefinitionInvalid) as caught:
        parse_workflow_yaml(text, budget)
    [violation] = caught.value.violations
    assert (violation.rule, violation.element) == ("STRUCTURE", "document")
    return violation.message


def size(text: str) -> Expansion:
    return expansion(yaml.compose(text, Loader=yaml.SafeLoader), BIG)


def nested_aliases(levels: int, fanout: int, leaf: str = '"lol"') -> str:
    lines = [f"l0: &l0 [{', '.join([leaf] * fanout)}]"]
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * fanout)}]")
    return "\n".join(lines) + "\n"


def with_ai_context(extra: str) -> str:
    """MINIMAL with ``extra`` (YAML mapping lines) as the workflow's ai_context."""
    indented = "".join(f"    {line}\n" for line in extra.splitlines())
    return MINIMAL.replace("  version: 1\n", f"  version: 1\n  ai_context:\n{indented}")


def test_the_billion_laughs_is_refused_naming_the_limit_and_the_setting() -> None:
    text = (HOSTILE / "billion_laughs.yml").read_text(encoding="utf-8")
    assert len(text.encode()) == 632
    message = refusal(text)
    assert "once its YAML aliases and merge keys (<<) are expanded" in message
    assert "the limit is 100000 nodes, setting CHAMELEON_YAML_MAX_NODES" in message
    assert "write the repeated parts out, or raise the limit" in message


def test_a_small_valid_template_that_grows_to_megabytes_is_refused() -> None:
    # About 6 KB of text (a valid workflow) whose ai_context expands to about 20 MB.
    filler = "x" * 1000
    extra = f'base: &base ["{filler}", "{filler}"]\n' + nested_aliases(4, 10, "*base")
    text = with_ai_context(extra + "".join(f"note{i}: {filler[:100]}\n" for i in range(20)))
    assert 5_000 < len(text) < 7_000
    assert size(text).chars > 20_000_000 and size(text).nodes < BUDGET.max_nodes
    message = refusal(text)
    assert f"grows to more than {10 * len(text)} characters" in message
    assert "the limit is 10 times the document's" in message
    assert "setting CHAMELEON_YAML_MAX_EXPANSION" in message


def test_merge_keys_count_as_copies() -> None:
    levels = ["m0: &m0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol}"]
    for n in range(1, 9):
        keys = ", ".join(f"k{k}: *m{n - 1}" for k in range(8))
        levels.append(f"m{n}: &m{n} {{<<: *m{n - 1}, {keys}}}")
    message = refusal(with_ai_context("\n".join(levels)))
    assert "merge keys (<<)" in message


def test_a_template_with_a_few_aliases_and_a_merge_key_is_accepted() -> None:
    text = with_ai_context("shared: &shared {team: invoices, sla_hours: 4}\nagain: *shared")
    text = text.replace(
        "guardian: {name: Fixer_Gate, type: PASS_THRU}",
        "guardian: {name: Fixer_Gate, type: PASS_THRU, config: {<<: *shared, default: false}}",
    )
    defn = parse_workflow_yaml(text, BUDGET)
    assert defn.ai_context == {
        "shared": {"team": "invoices", "sla_hours": 4},
        "again": {"team": "invoices", "sla_hours": 4},
    }
    fixer = next(c for c in defn.components if c.name == "Fixer_In")
    assert fixer.guardians[0].config == {"team": "invoices", "sla_hours": 4, "default": False}


def test_expansion_counts_each_alias_as_a_copy() -> None:
    assert size("[a, b]") == Expansion(nodes=3, chars=5)
    assert size("[&x ab, *x, *x]") == Expansion(nodes=4, chars=10)
    # The mapping, its three keys, and lists of 1 + 10, 1 + 10 * 11 and 1 + 10 * 111 nodes.
    assert size(nested_aliases(3, 10)).nodes == 1 + 3 + 11 + 111 + 1111


def test_expansion_saturates_at_the_cap() -> None:
    root = yaml.compose(nested_aliases(30, 10), Loader=yaml.SafeLoader)
    assert expansion(root, Expansion(1000, 1000)) == Expansion(1001, 1001)


def test_an_anchor_cycle_is_left_for_the_reader_to_report() -> None:
    text = with_ai_context("loop: &loop [*loop]")
    with pytest.raises(DefinitionInvalid, match="refers to itself"):
        parse_workflow_yaml(text, BUDGET)


def test_without_a_budget_nothing_is_sized() -> None:
    text = with_ai_context(nested_aliases(4, 10))
    assert parse_workflow_yaml(text, None).ai_context is not None
    assert "setting max_nodes" in refusal(text, YamlBudget(max_nodes=1000))


def test_every_bundled_and_fixture_example_is_within_the_default_budget() -> None:
    examples = Path(__file__).resolve().parents[1] / "fixtures" / "prototype-examples"
    for path in sorted(examples.glob("*.y*ml")):
        text = path.read_text(encoding="utf-8")
        try:
            parse_workflow_yaml(text)
        except DefinitionInvalid as exc:
            assert "aliases" not in str(exc), path
