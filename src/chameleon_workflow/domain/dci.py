"""Dynamic Context Injection: what CONDITIONAL_INJECTOR guardians tell the actor at checkout.

Pure: given the injectors of the component a UOW is checked out from, the UOW's condition
environment (see :func:`.gates.condition_env`), the models the workflow allows and the
server's failover model, :func:`inject` says which rules applied and what they changed. An
injector never rejects work: a condition that cannot be evaluated does not hold (and is
logged, as for gates).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .gates import condition_holds
from .guardian_config import InjectionRule, Injector

INSTRUCTION_SEPARATOR = "\n\n"


class ModelChoice(StrEnum):
    """What became of the model the applied rules asked for."""

    NONE = "none"  # no applied rule set model_override
    OVERRIDDEN = "overridden"  # the workflow allows the requested model
    FAILOVER = "failover"  # not allowed: the server's failover model instead
    REFUSED = "refused"  # not allowed and no failover configured: no override


@dataclass(frozen=True)
class AppliedRule:
    guardian: str
    rule: int
    condition: str

    def as_json(self) -> dict[str, Any]:
        return {"guardian": self.guardian, "rule": self.rule, "condition": self.condition}


@dataclass(frozen=True)
class Injection:
    """The merged effect of every rule that applied, in order."""

    model_id: str | None
    instructions: str | None
    knowledge_fragments: tuple[str, ...]
    applied_rules: tuple[AppliedRule, ...]
    model_requested: str | None
    model_choice: ModelChoice

    def response(self) -> dict[str, Any]:
        """The checkout answer's ``dci``."""
        return {
            "model_id": self.model_id,
            "instructions": self.instructions,
            "knowledge_fragments": list(self.knowledge_fragments),
            "applied_rules": [r.as_json() for r in self.applied_rules],
        }

    def audit(self) -> dict[str, Any]:
        """The details of the UOW's ``dci_applied`` log row: the guardians and rules that
        applied, the model asked for and chosen, and everything the actor was told."""
        return {
            "guardians": list(dict.fromkeys(r.guardian for r in self.applied_rules)),
            **self.response(),
            "model_requested": self.model_requested,
            "model_choice": self.model_choice.value,
            "overridden": self.model_choice is ModelChoice.OVERRIDDEN,
            "fell_back": self.model_choice is ModelChoice.FAILOVER,
        }


def matching(
    injectors: Iterable[Injector], env: Mapping[str, Any]
) -> list[tuple[str, InjectionRule]]:
    """The rules whose condition holds over ``env`` with their guardian's name, in guardian
    then rule order."""
    return [
        (injector.guardian, rule)
        for injector in injectors
        for rule in injector.rules
        if condition_holds(injector.guardian, rule.condition, env)[0]
    ]


def merge(
    matched: Sequence[tuple[str, InjectionRule]],
    allowed_models: frozenset[str],
    failover_model: str | None,
) -> Injection | None:
    """Apply the rules that matched, in order: the last model_override wins if the workflow
    allows it, instructions are trimmed and joined with a blank line, fragments are merged
    without duplicates (first occurrence kept). None when no rule applied."""
    if not matched:
        return None
    requested: str | None = None
    instructions: list[str] = []
    fragments: dict[str, None] = {}
    for _, rule in matched:
        if rule.model_override is not None:
            requested = rule.model_override
        if rule.instructions is not None and rule.instructions.strip():
            instructions.append(rule.instructions.strip())
        fragments.update(dict.fromkeys(rule.knowledge_fragments))
    model_id, choice = choose_model(requested, allowed_models, failover_model)
    return Injection(
        model_id=model_id,
        instructions=INSTRUCTION_SEPARATOR.join(instructions) if instructions else None,
        knowledge_fragments=tuple(fragments),
        applied_rules=tuple(AppliedRule(g, r.index, r.condition) for g, r in matched),
        model_requested=requested,
        model_choice=choice,
    )


def choose_model(
    requested: str | None, allowed_models: frozenset[str], failover_model: str | None
) -> tuple[str | None, ModelChoice]:
    """The model the actor is given for ``requested``: it when the workflow lists it in
    ``ai_context.allowed_models``, else the server's failover model, else none."""
    if requested is None:
        return None, ModelChoice.NONE
    if requested in allowed_models:
        return requested, ModelChoice.OVERRIDDEN
    if failover_model:
        return failover_model, ModelChoice.FAILOVER
    return None, ModelChoice.REFUSED


def inject(
    injectors: Iterable[Injector],
    env: Mapping[str, Any],
    allowed_models: frozenset[str],
    failover_model: str | None,
) -> Injection | None:
    """Evaluate every rule of ``injectors`` over ``env`` and merge the ones that hold."""
    return merge(matching(injectors, env), allowed_models, failover_model)
