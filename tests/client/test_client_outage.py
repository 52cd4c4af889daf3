"""A real 503: PostgreSQL goes away under a real server (a TCP proxy between them is cut)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from chameleon_workflow.client import Client, DatabaseUnavailable, RetryPolicy
from tests.e2e.tcp_proxy import TcpProxy, proxy_to
from tests.process import server_env, serving

pytestmark = pytest.mark.postgres


@dataclass
class Outage:
    base: str
    proxy: TcpProxy


@pytest.fixture
def outage(pg_url: str, tmp_path: Path) -> Iterator[Outage]:
    target = make_url(pg_url)
    with proxy_to(target.host or "127.0.0.1", target.port or 5432) as proxy:
        url = target.set(port=proxy.port).render_as_string(hide_password=False)
        env = server_env(url, CHAMELEON_AUTH_ENABLED="false")
        with serving(env, tmp_path / "server.log") as (base, _):
            yield Outage(base, proxy)


def test_a_503_from_a_lost_database_is_retried_until_it_is_back(outage: Outage) -> None:
    slept: list[float] = []

    def wait(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            outage.proxy.restore()
        time.sleep(0.2)  # not the server's Retry-After: the test does not wait that long

    with Client(outage.base, retry=RetryPolicy(attempts=30), sleep=wait) as c:
        assert isinstance(c.instances(), list)
        outage.proxy.cut()
        assert isinstance(c.instances(), list)
    assert len(slept) >= 2
    assert min(slept) >= 2.0  # the server's Retry-After was honoured


def test_a_503_past_the_attempts_is_database_unavailable_with_the_servers_words(
    outage: Outage,
) -> None:
    slept: list[float] = []
    with Client(outage.base, retry=RetryPolicy(attempts=2), sleep=slept.append) as c:
        outage.proxy.cut()
        with pytest.raises(DatabaseUnavailable) as caught:
            c.instances()
    assert caught.value.status == 503
    assert caught.value.error == "DatabaseUnavailable"
    assert "database" in caught.value.message.lower()
    assert len(slept) == 1
