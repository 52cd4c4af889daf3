"""A whole flow through the client only; the typed answers hold every field they declare;
paged lists are read to the end."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chameleon_workflow.client import Client, Forbidden, NotFound, ValidationError
from chameleon_workflow.client import models as m
from tests.client.conftest import Server, set_up
from tests.flows import fixture_text


def _declared_fields_are_answered(model: m.Model) -> None:
    """Every field the model declares was in the server's answer (none filled by a default)."""
    assert model.model_fields_set >= set(type(model).model_fields), (
        type(model).__name__,
        set(type(model).model_fields) - model.model_fields_set,
    )


def test_a_whole_flow_through_the_client(server: Server) -> None:
    c = server.client()
    template = c.import_template(fixture_text("routing_workflow.yml"))
    assert template.name == "Routing_Test"
    assert [t.template_id for t in c.templates()] == [template.template_id]
    started = c.instantiate(template.template_id, {"amount": 5}, name="client flow")
    instance = c.instance(started.instance_id)
    assert instance.name == "client flow" and instance.status == "ACTIVE"
    triage = instance.role_id("Triage")
    actor = c.create_actor("worker", "AI_AGENT")
    assert c.assign(actor.actor_id, triage).created is True
    assert c.assign(actor.actor_id, triage).created is False
    second = c.genesis(started.instance_id, {"amount": 7})
    assert second["uow_id"]

    work = c.checkout(actor.actor_id, triage)
    assert work is not None and work.role == "Triage" and work.injected == []
    beat = c.heartbeat(work.uow_id, actor.actor_id, work.lease_id)
    assert beat.success
    rule = {"key": "small amounts", "value": "go to SmallQ", "confidence": 0.8}
    done = c.submit(
        work.uow_id,
        actor.actor_id,
        {"verdict": "small", "_learned_rule": rule},
        lease_id=work.lease_id,
        reasoning="amount under 1000",
    )
    assert done.replayed is False and done.interaction == "SmallQ"
    assert done.learned_memory_id is not None

    history = c.uow_history(work.uow_id)
    assert {a.key for a in history.attributes} >= {"amount", "verdict"}
    assert "_learned_rule" not in {a.key for a in history.attributes}
    learned = c.memory(done.learned_memory_id)
    assert learned.value == "go to SmallQ" and learned.source_uow_id == work.uow_id

    # the next checkout of the same actor gets its learned rule injected
    nxt = c.checkout(actor.actor_id, triage)
    assert nxt is not None
    assert any(i.get("key") == "small amounts" for i in nxt.injected), nxt.injected
    for answer in (template, started, instance, actor, work, beat, done, history, learned, nxt):
        _declared_fields_are_answered(answer)


def test_memories_write_list_versions_archive_restore(server: Server) -> None:
    c = server.client()
    s = set_up(c)
    first = c.write_memory(s.role_id, "tone", "formal", reasoning="house style", scope="GLOBAL")
    second = c.write_memory(s.role_id, "tone", "plain", reasoning="changed", scope="GLOBAL")
    assert second.id == first.id and second.version == 2
    assert [v.value for v in c.memory_versions(first.id)] == ["formal", "plain"]
    assert [x.key for x in c.memories(s.role_id)] == ["tone"]
    archived = c.archive_memory(first.id, "obsolete")
    assert archived.archived is True
    assert c.memories(s.role_id) == []
    assert [x.id for x in c.memories(s.role_id, archived=True)] == [first.id]
    restored = c.restore_memory(first.id, "needed again")
    assert restored.archived is False
    for answer in (first, archived, restored, *c.memory_versions(first.id)):
        _declared_fields_are_answered(answer)


def test_an_intervention_is_requested_read_with_wait_and_listed_pending(server: Server) -> None:
    c = server.client()
    s = set_up(c)
    work = c.checkout(s.actor_id, s.role_id)
    assert work is not None
    asked = c.request_intervention(
        work.uow_id, s.actor_id, "may I?", lease_id=work.lease_id, description="a big one"
    )
    assert asked.status == "pending" and asked.title == "may I?"
    assert c.intervention(asked.id).id == asked.id
    assert c.intervention(asked.id, wait=0.2).status == "pending"  # long-poll, still pending
    assert [i.id for i in c.pending_interventions(instance_id=s.instance_id)] == [asked.id]
    _declared_fields_are_answered(asked)


def test_pagination_reads_every_item_across_pages(server: Server) -> None:
    c = server.client()
    made = [c.create_actor(f"actor {n}").actor_id for n in range(7)]
    listed = [a.id for a in c.actors(limit=2)]
    assert len(listed) == 7 and set(listed) == set(made)
    assert server.network.sent["/actors"] == 7 + 4  # seven creations, four pages of two
    items: list[dict[str, Any]] = list(c.paginate("/actors", limit=3))
    assert len(items) == 7


def test_a_checkout_with_nothing_to_do_is_none(server: Server) -> None:
    c: Client = server.client()
    s = set_up(c)
    assert c.checkout(s.actor_id, s.role_id) is not None
    assert c.checkout(s.actor_id, s.role_id) is None


def test_a_pilot_approves_and_the_work_comes_back(server: Server) -> None:
    c = server.client()
    s = set_up(c)
    work = c.checkout(s.actor_id, s.role_id)
    assert work is not None
    asked = c.request_intervention(work.uow_id, s.actor_id, "ok?", lease_id=work.lease_id)
    with pytest.raises(NotFound):
        c.approve_intervention(uuid.uuid4(), "no such request")
    answer = c.approve_intervention(asked.id, "looks right")
    assert answer
    assert c.intervention(asked.id, wait=1).status != "pending"
    assert c.pending_interventions() == []


def test_an_actor_key_works_as_its_actor_only(server: Server) -> None:
    admin = server.client()
    s = set_up(admin)
    made = admin.create_key("actor", actor_id=s.actor_id, name="worker key")
    secret = next(v for v in made.values() if isinstance(v, str) and v.startswith("chm"))
    worker = server.client(key=secret)
    with pytest.raises(Forbidden):
        worker.create_actor("not allowed")
    work = worker.checkout(s.actor_id, s.role_id)
    assert work is not None
    assert worker.submit(work.uow_id, s.actor_id, {"v": 1}, lease_id=work.lease_id).success


def test_hold_release_uows_zombies_and_the_generic_request(server: Server) -> None:
    c = server.client()
    s = set_up(c)
    memory = c.write_memory(s.role_id, "k", 1, reasoning="r", scope="GLOBAL")
    assert c.hold_memory(memory.id, "investigating").held is True
    assert c.release_memory(memory.id, "done").held is False
    listed = c.uows(instance_id=s.instance_id, limit=1)
    assert len(listed) == 1 and listed[0]["instance_id"] == str(s.instance_id)
    assert c.run_zombie_protocol(dry_run=True)["dry_run"] is True
    assert c.request("GET", "/health")["status"]
    assert c.actor(s.actor_id)["role_ids"] == [str(s.role_id)]
    with pytest.raises(ValidationError):
        c.request("POST", "/admin/run-zombie-protocol", json={"dry_run": "maybe"})
