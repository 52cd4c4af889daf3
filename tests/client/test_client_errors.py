"""The API's errors arrive as typed exceptions carrying the server's words (both databases)."""

from __future__ import annotations

import uuid

import pytest

from chameleon_workflow.client import (
    ChameleonError,
    Forbidden,
    InstancePaused,
    InvalidInput,
    LeaseLost,
    NotAssigned,
    NotFound,
    Unauthenticated,
    UnknownUow,
    ValidationError,
)
from tests.client.conftest import Server, set_up
from tests.conftest import make_key


def test_no_key_is_unauthenticated(server: Server) -> None:
    with pytest.raises(Unauthenticated) as caught:
        server.client(key=None).instances()
    assert caught.value.status == 401
    assert caught.value.error == "Unauthenticated"
    assert caught.value.message
    assert server.network.sent["/instances"] == 1  # a 4xx is never retried


def test_a_viewer_key_cannot_create_an_actor(server: Server) -> None:
    viewer = make_key(server.settings, "viewer")
    with pytest.raises(Forbidden) as caught:
        server.client(key=viewer).create_actor("nobody")
    assert caught.value.status == 403
    assert "viewer" in caught.value.message.lower() or "scope" in caught.value.message.lower()
    assert server.network.sent["/actors"] == 1


def test_an_unknown_uow_is_not_found_naming_it(server: Server) -> None:
    missing = uuid.uuid4()
    with pytest.raises(UnknownUow) as caught:
        server.client().uow(missing)
    assert isinstance(caught.value, NotFound)
    assert caught.value.status == 404
    assert str(missing) in caught.value.message
    assert server.network.sent[f"/uows/{missing}"] == 1


def test_a_checkout_for_a_role_the_actor_does_not_hold_is_not_assigned(server: Server) -> None:
    c = server.client()
    s = set_up(c)
    stranger = c.create_actor("stranger").actor_id
    with pytest.raises(NotAssigned) as caught:
        c.checkout(stranger, s.role_id)
    assert caught.value.status == 403
    assert str(stranger) in caught.value.message or "assign" in caught.value.message.lower()


def test_a_wrong_lease_id_is_lease_lost(server: Server) -> None:
    c = server.client()
    s = set_up(c)
    work = c.checkout(s.actor_id, s.role_id)
    assert work is not None
    with pytest.raises(LeaseLost) as caught:
        c.submit(work.uow_id, s.actor_id, {"x": 1}, lease_id=uuid.uuid4())
    assert caught.value.status == 409
    assert caught.value.message
    with pytest.raises(LeaseLost):
        c.heartbeat(work.uow_id, s.actor_id, uuid.uuid4())
    assert c.uow(work.uow_id).status == "ACTIVE"
    assert server.network.sent["/workflow/submit"] == 1


def test_a_lease_reclaimed_by_the_zombie_sweep_and_leased_again_is_lost(server: Server) -> None:
    c = server.client()
    s = set_up(c)
    work = c.checkout(s.actor_id, s.role_id)
    assert work is not None
    server.clock.advance(301)
    server.app.post(
        "/admin/run-zombie-protocol",
        json={},
        headers={"Authorization": f"Bearer {server.admin_key}"},
    ).raise_for_status()
    other = c.create_actor("other").actor_id
    timer = c.instance(s.instance_id).role_id("Timer")  # the sweep sends it to Timeouts
    c.assign(other, timer)
    again = c.checkout(other, timer)
    assert again is not None and again.uow_id == work.uow_id and again.lease_id != work.lease_id
    with pytest.raises(LeaseLost) as caught:
        c.submit(work.uow_id, s.actor_id, {"x": 1}, lease_id=work.lease_id)
    assert "zombie" in caught.value.message and "reclaimed" in caught.value.message
    assert caught.value.details["ended_by"] == "reclaim"
    with pytest.raises(LeaseLost):
        c.report_failure(work.uow_id, s.actor_id, "E", lease_id=work.lease_id)
    assert server.network.sent["/workflow/submit"] == 1
    assert server.network.sent["/workflow/failure"] == 1
    assert c.uow(work.uow_id).lease_holder_id == other


def test_a_bad_body_is_a_validation_error_with_the_servers_message(server: Server) -> None:
    c = server.client()
    with pytest.raises(ValidationError) as caught:
        c.instantiate("not-a-uuid")
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.status == 422
    assert "template_id" in caught.value.message
    assert server.network.sent["/workflow/instantiate"] == 1


def test_a_bad_learned_rule_is_invalid_input(server: Server) -> None:
    c = server.client()
    s = set_up(c)
    work = c.checkout(s.actor_id, s.role_id)
    assert work is not None
    with pytest.raises(InvalidInput) as caught:
        c.submit(work.uow_id, s.actor_id, {"_learned_rule": "no"}, lease_id=work.lease_id)
    assert caught.value.error == "InvalidInput"
    assert "_learned_rule" in caught.value.message
    assert c.uow(work.uow_id).status == "ACTIVE"


def test_a_paused_instance_refuses_genesis(server: Server) -> None:
    c = server.client()
    s = set_up(c)
    paused = c.kill_switch(s.instance_id, "stop everything")
    assert paused
    with pytest.raises(InstancePaused) as caught:
        c.genesis(s.instance_id, {"amount": 1})
    assert caught.value.status == 409
    assert isinstance(caught.value, ChameleonError)
    assert c.checkout(s.actor_id, s.role_id) is None  # a paused instance's work is not handed out
    c.resume_instance(s.instance_id, "go on")
    assert c.instance(s.instance_id).status == "ACTIVE"
