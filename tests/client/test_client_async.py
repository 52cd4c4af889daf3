"""The async client against a real `chameleon serve` process, on both databases."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from chameleon_workflow.client import (
    AsyncClient,
    Client,
    LeaseLost,
    NotFound,
    TransportError,
    Unauthenticated,
)
from tests.flows import fixture_text
from tests.process import create_key, server_env, serving


@dataclass
class AsyncNetwork(httpx.AsyncBaseTransport):
    """The real network, which drops the answer of the first ``drop`` requests to a path."""

    drop: dict[str, int] = field(default_factory=dict)
    sent: Counter[str] = field(default_factory=Counter)
    inner: httpx.AsyncHTTPTransport = field(default_factory=httpx.AsyncHTTPTransport)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.sent[request.url.path] += 1
        if self.drop.get(request.url.path, 0):
            self.drop[request.url.path] -= 1
            await response.aclose()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    env = server_env(db_url)
    key = create_key(env)
    with serving(env, tmp_path / "server.log") as (base, _):
        yield base, key


async def _flow(base: str, key: str) -> None:
    network = AsyncNetwork()
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    async with AsyncClient(base, key, transport=network, sleep=no_sleep) as c:
        # unhappy first: no key, unknown UOW, a wrong lease; none retried
        async with AsyncClient(base) as anonymous:
            with pytest.raises(Unauthenticated):
                await anonymous.instances()
        missing = uuid.uuid4()
        with pytest.raises(NotFound):
            await c.uow(missing)
        assert network.sent[f"/uows/{missing}"] == 1
        template = await c.import_template(fixture_text("routing_workflow.yml"))
        started = await c.instantiate(template.template_id, {"amount": 5})
        triage = (await c.instance(started.instance_id)).role_id("Triage")
        actor = (await c.create_actor("async worker")).actor_id
        await c.assign(actor, triage)
        work = await c.checkout(actor, triage)
        assert work is not None
        with pytest.raises(LeaseLost) as caught:
            await c.heartbeat(work.uow_id, actor, uuid.uuid4())
        assert caught.value.status == 409 and caught.value.message
        assert (await c.heartbeat(work.uow_id, actor, work.lease_id)).success

        # the submit's answer is lost: sent again with its lease, replayed, done once
        network.drop["/workflow/submit"] = 1
        done = await c.submit(work.uow_id, actor, {"verdict": "ok"}, lease_id=work.lease_id)
        assert done.replayed is True and network.sent["/workflow/submit"] == 2
        assert len(slept) == 1
        history = await c.uow_history(work.uow_id)
        assert [a.value for a in history.attributes if a.key == "verdict"] == ["ok"]

        # without its lease, a lost answer is not sent again
        second = await c.genesis(started.instance_id, {"amount": 3})
        nxt = await c.checkout(actor, triage)
        assert nxt is not None and str(nxt.uow_id) == second["uow_id"]
        network.drop["/workflow/submit"] = 1
        with pytest.raises(TransportError):
            await c.submit(nxt.uow_id, actor, {"verdict": "ok"})
        assert network.sent["/workflow/submit"] == 3
        assert (await c.uow(nxt.uow_id)).status == "PENDING"
        assert await c.checkout(actor, triage) is None

        for n in range(4):
            await c.create_actor(f"extra {n}")
        assert len(await c.actors(limit=2)) == 5


def test_the_async_client_over_a_real_server(live: tuple[str, str]) -> None:
    base, key = live
    asyncio.run(_flow(base, key))


def test_the_sync_client_over_a_real_server_refuses_without_a_key(live: tuple[str, str]) -> None:
    base, key = live
    with Client(base) as anonymous, pytest.raises(Unauthenticated) as caught:
        anonymous.instances()
    assert caught.value.status == 401 and caught.value.message
    with Client(base, key) as c:
        assert c.instances() == []
