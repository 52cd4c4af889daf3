"""Response bodies of the list endpoints: one page of items and the cursor of the next.

Every page is ``{"items": [...], "next_cursor": "..." | null}`` (``api.pagination``); the
items are the models of ``views`` and ``views_admin``, or the summaries below.
"""

from __future__ import annotations

import uuid
from typing import Self

from pydantic import Field

from ..engine import maintenance
from ..store.instances import InstanceRow
from ..store.templates import TemplateRow
from .views import Actor, Influence, Injection, Memory, MemoryVersion, Time, View
from .views_admin import MaintenanceRun, ToxicEvent, Zombie

NEXT = Field(description="Pass as ?cursor= to read the next page; null on the last page.")


class TemplateSummary(View):
    template_id: uuid.UUID
    name: str
    version: int
    description: str | None
    imported_at: Time

    @classmethod
    def of(cls, t: TemplateRow) -> Self:
        return cls(
            template_id=t.id, name=t.name, version=t.version, description=t.description,
            imported_at=t.imported_at,
        )  # fmt: skip


class InstanceSummary(View):
    instance_id: uuid.UUID
    template_id: uuid.UUID
    name: str
    description: str | None
    created_at: Time
    status: str = Field(description="ACTIVE, or PAUSED by a pilot's kill switch")
    paused_at: Time | None
    paused_by: str | None
    pause_reason: str | None

    @classmethod
    def of(cls, i: InstanceRow) -> Self:
        return cls(
            instance_id=i.id, template_id=i.template_id, name=i.name,
            description=i.description, created_at=i.created_at, status=i.status,
            paused_at=i.paused_at, paused_by=i.paused_by, pause_reason=i.pause_reason,
        )  # fmt: skip


class TemplatePage(View):
    """Templates by name, then version."""

    items: list[TemplateSummary]
    next_cursor: str | None = NEXT


class InstancePage(View):
    """Instances, oldest first."""

    items: list[InstanceSummary]
    next_cursor: str | None = NEXT


class ActorPage(View):
    """Actors, oldest first."""

    items: list[Actor]
    next_cursor: str | None = NEXT


class MemoryPage(View):
    """A role's memories by scope, then key."""

    items: list[Memory]
    next_cursor: str | None = NEXT


class MemoryVersionPage(View):
    """A memory's versions, oldest first."""

    items: list[MemoryVersion]
    next_cursor: str | None = NEXT


class InfluencePage(View):
    """The checkouts a memory was injected into, oldest first."""

    items: list[Influence]
    next_cursor: str | None = NEXT


class InjectionPage(View):
    """The checkouts of a UOW that were given memories, oldest first."""

    items: list[Injection]
    next_cursor: str | None = NEXT


class MaintenanceRunPage(View):
    """Recorded runs of the background services, newest first."""

    items: list[MaintenanceRun]
    next_cursor: str | None = NEXT


class ToxicEventPage(View):
    """Changes of a memory's toxic mark, oldest first."""

    items: list[ToxicEvent]
    next_cursor: str | None = NEXT


class ZombiePage(View):
    """The zombies a sweep would reclaim now, longest silent first; ``count`` is how many
    there are in all and ``timeout_seconds`` the timeout applied where no role or workflow
    sets its own."""

    timeout_seconds: int
    count: int
    items: list[Zombie]
    next_cursor: str | None = NEXT

    @classmethod
    def of(cls, z: maintenance.ZombieListing, next_cursor: str | None) -> Self:
        items = [Zombie.of(c) for c in z.zombies]
        return cls(timeout_seconds=z.timeout_seconds, count=z.count, items=items,
                   next_cursor=next_cursor)  # fmt: skip
