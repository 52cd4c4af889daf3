"""The real app over both databases, and a small client-side helper for driving it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from chameleon_workflow.api.app import create_app
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings
from tests.conftest import FakeClock, bearer, make_key
from tests.flows import fixture_text

SMALL_BODY_CAP = 2048
# The header of a template import: the body is YAML (a body without a type is refused, 415).
YAML = {"content-type": "application/yaml"}


@pytest.fixture
def admin_key(settings: Settings) -> str:
    """An admin API key in the test's database: the clients below send it."""
    return make_key(settings, "admin")


@pytest.fixture
def client(settings: Settings, admin_key: str) -> Iterator[TestClient]:
    """The app as the server builds it, called with an admin key; the lifespan runs.
    Server errors surface as 500s."""
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False, headers=bearer(admin_key)) as c:
        yield c


@pytest.fixture
def anonymous(client: TestClient) -> TestClient:
    """The same app, called without a key."""
    return TestClient(client.app, raise_server_exceptions=False)


@pytest.fixture
def small_client(settings: Settings, admin_key: str) -> Iterator[TestClient]:
    """The app with a small request body cap, on the same database as ``client``."""
    capped = settings.model_copy(update={"max_body_bytes": SMALL_BODY_CAP})
    app = create_app(capped)
    with TestClient(app, raise_server_exceptions=False, headers=bearer(admin_key)) as c:
        yield c


@pytest.fixture
def clocked_client(settings: Settings, clock: FakeClock, admin_key: str) -> Iterator[TestClient]:
    """The app over an engine whose clock moves only when the test says so."""
    engine = Engine(settings, clock=clock)
    try:
        with TestClient(create_app(settings, engine=engine), headers=bearer(admin_key)) as c:
            yield c
    finally:
        engine.close()


def problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """Assert a JSON error response with ``status`` whose message names every word."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and body.get("error") and body.get("message"), body
    text = str(body).lower()
    for word in words:
        assert word.lower() in text, (word, body)
    return body


def items(response: httpx.Response) -> list[Any]:
    """The items of a one-page list answer (it must have no next page)."""
    page = ok(response)
    assert page["next_cursor"] is None, page
    return page["items"]  # type: ignore[no-any-return]


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


class Api:
    """Thin calls on the HTTP API, returning decoded JSON (asserting the expected status)."""

    def __init__(self, client: httpx.Client) -> None:
        self.c = client

    def import_template(self, text: str) -> dict[str, Any]:
        return ok(self.c.post("/templates", content=text, headers=YAML), 201)  # type: ignore[no-any-return]

    def instantiate(
        self, template_id: str, context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = {"template_id": template_id, "initial_context": context or {}}
        return ok(self.c.post("/workflow/instantiate", json=body))  # type: ignore[no-any-return]

    def roles(self, instance_id: str) -> dict[str, str]:
        described = ok(self.c.get(f"/instances/{instance_id}"))
        return {r["name"]: r["role_id"] for r in described["roles"]}

    def actor(self, name: str, roles: list[str] | None = None, kind: str = "AI_AGENT") -> str:
        created = ok(self.c.post("/actors", json={"name": name, "type": kind}), 201)
        actor_id: str = created["actor_id"]
        for role_id in roles or []:
            ok(self.c.post(f"/actors/{actor_id}/assignments", json={"role_id": role_id}), 201)
        return actor_id

    def checkout(self, actor_id: str, role_id: str) -> httpx.Response:
        return self.c.post("/workflow/checkout", json={"actor_id": actor_id, "role_id": role_id})

    def take(self, actor_id: str, role_id: str) -> dict[str, Any]:
        return ok(self.checkout(actor_id, role_id))  # type: ignore[no-any-return]

    def submit(self, lease: dict[str, Any], actor_id: str, **attrs: Any) -> httpx.Response:
        body = {
            "uow_id": lease["uow_id"],
            "actor_id": actor_id,
            "lease_id": lease["lease_id"],
            "result_attributes": attrs,
        }
        return self.c.post("/workflow/submit", json=body)

    def uow(self, uow_id: str) -> dict[str, Any]:
        return ok(self.c.get(f"/uows/{uow_id}"))  # type: ignore[no-any-return]

    def state(self, uow_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """What a client can see of a UOW, minus the clock-dependent heartbeat age."""
        detail = self.uow(uow_id)
        detail.pop("heartbeat_age_seconds")
        return detail, ok(self.c.get(f"/uows/{uow_id}/history"))


@dataclass
class Run:
    """One instance of ``routing_workflow.yml`` with a worker assigned to every role."""

    api: Api
    template_id: str
    instance_id: str
    uow_id: str
    roles: dict[str, str]
    actor: str

    def take(self, role: str, actor: str | None = None) -> dict[str, Any]:
        return self.api.take(actor or self.actor, self.roles[role])

    def checkout(self, role: str, actor: str | None = None) -> httpx.Response:
        return self.api.checkout(actor or self.actor, self.roles[role])

    def genesis(self, **context: Any) -> str:
        body = {"initial_context": context}
        uow_id: str = ok(self.api.c.post(f"/instances/{self.instance_id}/genesis", json=body), 201)[
            "uow_id"
        ]
        return uow_id


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


def start_run(api: Api) -> Run:
    """An instance of the routing workflow with one worker assigned to every role."""
    template = api.import_template(fixture_text("routing_workflow.yml"))
    made = api.instantiate(template["template_id"], {"amount": 10})
    roles = api.roles(made["workflow_id"])
    worker = api.actor("worker", [rid for name, rid in roles.items() if name != "Origin"])
    return Run(api, template["template_id"], made["workflow_id"], made["uow_id"], roles, worker)


@pytest.fixture
def run(api: Api) -> Run:
    return start_run(api)


def unknown() -> str:
    return str(uuid.uuid4())
