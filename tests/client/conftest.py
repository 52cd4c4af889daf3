"""The real app and database behind the client; faults only in the network between them."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi.testclient import TestClient

from chameleon_workflow.api.app import create_app
from chameleon_workflow.client import Client, RetryPolicy
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from tests.conftest import FakeClock, make_key
from tests.flows import fixture_text

BASE = "http://testserver"


@dataclass
class Fault:
    """What the network does to the requests whose path ends with ``path``: refuse the first
    ``refuse`` connections, answer 503 to the first ``unavailable`` requests (as a proxy in
    front of a sick server would), drop the answer of the first ``drop`` that reached the app."""

    path: str
    refuse: int = 0
    unavailable: int = 0
    drop: int = 0
    retry_after: str = "0"


@dataclass
class Network(httpx.BaseTransport):
    """A transport in front of the app that counts what reaches the app and injects faults."""

    inner: httpx.BaseTransport
    faults: list[Fault] = field(default_factory=list)
    sent: Counter[str] = field(default_factory=Counter)  # requests that reached the app, by path
    tried: Counter[str] = field(default_factory=Counter)  # every attempt, by path

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.tried[path] += 1
        for fault in self.faults:
            if not path.endswith(fault.path):
                continue
            if fault.refuse:
                fault.refuse -= 1
                raise httpx.ConnectError("connection refused", request=request)
            if fault.unavailable:
                fault.unavailable -= 1
                return httpx.Response(503, headers={"Retry-After": fault.retry_after})
        answered = self.inner.handle_request(request)
        response = httpx.Response(
            answered.status_code, headers=answered.headers, content=answered.read()
        )
        self.sent[path] += 1
        for fault in self.faults:
            if path.endswith(fault.path) and fault.drop:
                fault.drop -= 1
                raise httpx.ReadError("connection reset by peer", request=request)
        return response


@dataclass
class Server:
    app: TestClient
    settings: Settings
    clock: FakeClock
    admin_key: str
    network: Network
    slept: list[float]

    def client(self, key: str | None = "admin", attempts: int = 4) -> Client:
        """A client through the faulty network, with the admin key unless told otherwise;
        its waits are recorded, not slept."""
        http = httpx.Client(transport=self.network)
        api_key = self.admin_key if key == "admin" else key
        retry = RetryPolicy(attempts=attempts)
        return Client(BASE, api_key, http=http, retry=retry, sleep=self.slept.append)


@pytest.fixture
def server(settings: Settings, clock: FakeClock) -> Iterator[Server]:
    engine = Engine(settings, clock=clock)
    try:
        with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as app:
            network = Network(app._transport)
            yield Server(app, settings, clock, make_key(settings, "admin"), network, [])
    finally:
        engine.close()


@dataclass
class Setup:
    instance_id: uuid.UUID
    actor_id: uuid.UUID
    role_id: uuid.UUID


def set_up(c: Client, amount: int = 5) -> Setup:
    """Through the client: import the routing workflow, start an instance, an actor on Triage."""
    template = c.import_template(fixture_text("routing_workflow.yml"))
    started = c.instantiate(template.template_id, {"amount": amount})
    role_id = c.instance(started.instance_id).role_id("Triage")
    actor = c.create_actor("worker")
    c.assign(actor.actor_id, role_id)
    return Setup(started.instance_id, actor.actor_id, role_id)
