"""Closed vocabularies of the engine."""

from __future__ import annotations

from enum import StrEnum


class RoleType(StrEnum):
    ALPHA = "ALPHA"
    BETA = "BETA"
    OMEGA = "OMEGA"
    EPSILON = "EPSILON"
    TAU = "TAU"


class Strategy(StrEnum):
    HOMOGENEOUS = "HOMOGENEOUS"
    HETEROGENEOUS = "HETEROGENEOUS"


class Direction(StrEnum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class GuardianType(StrEnum):
    PASS_THRU = "PASS_THRU"
    CRITERIA_GATE = "CRITERIA_GATE"
    TTL_CHECK = "TTL_CHECK"
    COMPOSITE = "COMPOSITE"
    CERBERUS = "CERBERUS"
    DIRECTIONAL_FILTER = "DIRECTIONAL_FILTER"
    PILOT_APPROVAL = "PILOT_APPROVAL"  # parks matching work for a pilot's approval
    CONDITIONAL_INJECTOR = "CONDITIONAL_INJECTOR"  # Dynamic Context Injection; never rejects


class UowStatus(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    COMPLETED = "COMPLETED"
    ABANDONED = "ABANDONED"
    PAUSED = "PAUSED"  # the instance's kill switch; resume puts it back where it was
    PENDING_PILOT_APPROVAL = "PENDING_PILOT_APPROVAL"  # parked with an intervention request


class InstanceStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"


class InterventionType(StrEnum):
    APPROVAL = "approval"
    CLARIFICATION = "clarification"


class InterventionStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class Priority(StrEnum):
    """An intervention's urgency; the inbox lists critical first."""

    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class ActorType(StrEnum):
    HUMAN = "HUMAN"
    AI_AGENT = "AI_AGENT"
    SYSTEM = "SYSTEM"


class MemoryScope(StrEnum):
    GLOBAL = "GLOBAL"
    ACTOR = "ACTOR"


class ExperienceValidation(StrEnum):
    """What happens to memories learned from a base UOW that ends ABANDONED (and from its
    children): archived (restorable), hard-deleted, or kept as they are."""

    ARCHIVE = "archive"
    DELETE = "delete"
    KEEP = "keep"


class ZombiePolicy(StrEnum):
    """What the zombie protocol does with a reclaimed UOW."""

    FAIL = "fail"
    REQUEUE = "requeue"


class Trigger(StrEnum):
    """Who started a maintenance run."""

    SCHEDULE = "schedule"
    ADMIN = "admin"
    CLI = "cli"
