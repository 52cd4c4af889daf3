"""Retries: after a refused connection or a 503 always, after a lost answer only when the
request is safe to send again (a submit/failure with its lease_id), never after a 4xx."""

from __future__ import annotations

import uuid

import pytest

from chameleon_workflow.client import DatabaseUnavailable, LeaseLost, NotFound, TransportError
from tests.client.conftest import Fault, Server, set_up


def test_a_4xx_is_never_retried(server: Server) -> None:
    c = server.client()
    missing = uuid.uuid4()
    with pytest.raises(NotFound):
        c.uow(missing)
    s = set_up(c)
    work = c.checkout(s.actor_id, s.role_id)
    assert work is not None
    with pytest.raises(LeaseLost):
        c.heartbeat(work.uow_id, s.actor_id, uuid.uuid4())
    assert server.network.tried[f"/uows/{missing}"] == 1
    assert sum(n for p, n in server.network.tried.items() if p.endswith("/heartbeat")) == 1
    assert server.slept == []


def test_refused_connections_are_retried_with_growing_waits(server: Server) -> None:
    server.network.faults.append(Fault("/instances", refuse=3))
    assert server.client(attempts=4).instances() == []
    assert server.network.tried["/instances"] == 4
    assert server.network.sent["/instances"] == 1
    assert len(server.slept) == 3
    # exponential: each wait's ceiling doubles (jitter takes up to half off)
    assert server.slept[2] > server.slept[0]


def test_refused_connections_past_the_attempts_raise_a_transport_error(server: Server) -> None:
    server.network.faults.append(Fault("/instances", refuse=5))
    with pytest.raises(TransportError) as caught:
        server.client(attempts=3).instances()
    assert "3 attempt" in caught.value.message
    assert server.network.sent["/instances"] == 0


def test_a_503_is_retried_honouring_retry_after(server: Server) -> None:
    server.network.faults.append(Fault("/instances", unavailable=2, retry_after="7"))
    assert server.client().instances() == []
    assert server.network.sent["/instances"] == 1
    assert server.slept == [7.0, 7.0]


def test_a_503_past_the_attempts_is_database_unavailable(server: Server) -> None:
    server.network.faults.append(Fault("/instances", unavailable=10))
    with pytest.raises(DatabaseUnavailable) as caught:
        server.client(attempts=3).instances()
    assert caught.value.status == 503
    assert server.network.tried["/instances"] == 3


def test_a_submit_with_its_lease_whose_answer_was_lost_is_replayed_and_done_once(
    server: Server,
) -> None:
    c = server.client()
    s = set_up(c)
    work = c.checkout(s.actor_id, s.role_id)
    assert work is not None
    server.network.faults.append(Fault("/workflow/submit", drop=1))
    result = c.submit(work.uow_id, s.actor_id, {"verdict": "ok"}, lease_id=work.lease_id)
    assert result.replayed is True
    assert server.network.sent["/workflow/submit"] == 2
    history = c.uow_history(work.uow_id)
    assert [a.value for a in history.attributes if a.key == "verdict"] == ["ok"]
    submits = [t for t in history.transitions if t.event.lower().startswith("submit")]
    assert len(submits) == 1, [t.event for t in history.transitions]


def test_a_failure_report_with_its_lease_whose_answer_was_lost_is_replayed(
    server: Server,
) -> None:
    c = server.client()
    s = set_up(c)
    work = c.checkout(s.actor_id, s.role_id)
    assert work is not None
    server.network.faults.append(Fault("/workflow/failure", drop=1))
    result = c.report_failure(work.uow_id, s.actor_id, "BROKEN", lease_id=work.lease_id)
    assert result.replayed is True
    assert server.network.sent["/workflow/failure"] == 2


def test_a_submit_without_a_lease_is_not_sent_again_after_its_answer_was_lost(
    server: Server,
) -> None:
    c = server.client()
    s = set_up(c)
    work = c.checkout(s.actor_id, s.role_id)
    assert work is not None
    server.network.faults.append(Fault("/workflow/submit", drop=1))
    with pytest.raises(TransportError) as caught:
        c.submit(work.uow_id, s.actor_id, {"verdict": "ok"})
    assert "lease_id" in caught.value.message
    assert server.network.sent["/workflow/submit"] == 1
    assert c.uow(work.uow_id).status == "PENDING"  # it had landed: done once


def test_a_checkout_is_not_sent_again_after_its_answer_was_lost(server: Server) -> None:
    c = server.client()
    s = set_up(c)
    server.network.faults.append(Fault("/workflow/checkout", drop=1))
    with pytest.raises(TransportError):
        c.checkout(s.actor_id, s.role_id)
    assert server.network.sent["/workflow/checkout"] == 1


def test_a_submit_without_a_lease_is_retried_when_the_connection_was_refused(
    server: Server,
) -> None:
    c = server.client()
    s = set_up(c)
    work = c.checkout(s.actor_id, s.role_id)
    assert work is not None
    server.network.faults.append(Fault("/workflow/submit", refuse=1))
    result = c.submit(work.uow_id, s.actor_id, {"verdict": "ok"})
    assert result.replayed is False and result.status == "PENDING"
    assert server.network.sent["/workflow/submit"] == 1
