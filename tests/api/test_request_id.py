"""One id per request: accepted or made, returned, seen by handlers and written in log lines."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from chameleon_workflow import logs
from chameleon_workflow.api.app import create_app
from chameleon_workflow.api.request_id import current_request_id, sane
from chameleon_workflow.settings import Settings
from tests.api.conftest import SMALL_BODY_CAP, YAML, unknown
from tests.process import cli, create_key, server_env, serving

MADE = re.compile(r"[0-9a-f]{32}")
probe_logger = logging.getLogger("tests.request_id")


class _Kept(logging.Handler):
    """Keeps the records it handles, after the request-id filter has run on them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.addFilter(logs.RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[_Kept]:
    handler = _Kept()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture
def probed(settings: Settings) -> Iterator[TestClient]:
    """The real app plus one route that reports the id it sees and logs a line."""
    app = create_app(settings)

    @app.get("/probe")
    def probe(request: Request) -> dict[str, str | None]:
        probe_logger.info("probing")
        return {"state": request.state.request_id, "context": current_request_id()}

    with TestClient(app) as client:
        yield client


def test_a_request_without_an_id_gets_a_new_one_each_time(client: TestClient) -> None:
    first = client.get("/health").headers["x-request-id"]
    second = client.get("/health").headers["x-request-id"]
    assert MADE.fullmatch(first) and MADE.fullmatch(second) and first != second


@pytest.mark.parametrize(
    "given", ["abc", "0f8fa3c2-9c1e-4f7b-8d51-0c7b1c2d9a10", "trace:1.2_3+x=/y", "x" * 128]
)
def test_a_sane_id_is_kept_and_returned(client: TestClient, given: str) -> None:
    assert client.get("/health", headers={"X-Request-ID": given}).headers["x-request-id"] == given


@pytest.mark.parametrize(
    "given", ["", "x" * 129, "has space", "semi;colon", 'quote"d', "é".encode(), "a,b", "\tx"]
)
def test_an_unsafe_id_is_replaced(client: TestClient, given: str | bytes) -> None:
    returned = client.get("/health", headers={"X-Request-ID": given}).headers["x-request-id"]
    assert MADE.fullmatch(returned)


def test_two_ids_in_one_request_are_replaced(client: TestClient) -> None:
    headers = [("X-Request-ID", "one"), ("X-Request-ID", "two")]
    returned = client.get("/health", headers=headers).headers.get_list("x-request-id")
    assert len(returned) == 1 and MADE.fullmatch(returned[0])


def test_sane_accepts_bytes_and_refuses_none() -> None:
    assert sane(b"ok-1") == "ok-1"
    assert sane(None) is None and sane(b"\xff") is None


def test_error_answers_carry_the_id(client: TestClient, small_client: TestClient) -> None:
    assert (
        client.get(f"/uows/{unknown()}", headers={"X-Request-ID": "e404"}).headers["x-request-id"]
        == "e404"
    )
    assert (
        client.get("/nowhere", headers={"X-Request-ID": "n404"}).headers["x-request-id"] == "n404"
    )
    big = small_client.post(
        "/templates", content=b"x" * (SMALL_BODY_CAP + 1), headers={"X-Request-ID": "e413", **YAML}
    )
    assert big.status_code == 413 and big.headers["x-request-id"] == "e413"


def test_handlers_see_the_id_and_every_log_line_carries_it(probed: TestClient, kept: _Kept) -> None:
    answer = probed.get("/probe", headers={"X-Request-ID": "req-42"})
    assert answer.json() == {"state": "req-42", "context": "req-42"}
    made = probed.get("/probe")
    assert made.json()["context"] == made.headers["x-request-id"]
    probing = [r for r in kept.records if r.name == probe_logger.name]
    assert [r.request_id for r in probing] == ["req-42", made.headers["x-request-id"]]  # type: ignore[attr-defined]
    assert current_request_id() is None  # nothing leaks out of the request


def test_engine_log_lines_written_while_serving_carry_the_id(
    client: TestClient, kept: _Kept
) -> None:
    """The line the maintenance service writes for a sweep names the request that ran it."""
    answer = client.post("/admin/run-zombie-protocol", headers={"X-Request-ID": "sweep-1"})
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "sweep-1"
    finished = [r for r in kept.records if r.getMessage() == "maintenance run finished"]
    assert [r.request_id for r in finished] == ["sweep-1"]  # type: ignore[attr-defined]


def test_the_json_format_is_one_object_a_line_with_the_extra_fields() -> None:
    record = logging.LogRecord("x.y", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    record.request_id = "r1"
    record.job = "zombie_sweep"
    record.counts = {"reclaimed": 2}
    entry = json.loads(logs.JsonFormatter().format(record))
    assert entry["message"] == "hello you" and entry["level"] == "WARNING"
    assert entry["logger"] == "x.y" and entry["request_id"] == "r1"
    assert entry["job"] == "zombie_sweep" and entry["counts"] == {"reclaimed": 2}
    assert "args" not in entry and "msg" not in entry


def test_the_json_format_keeps_the_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    entry = json.loads(logs.JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"] and entry["request_id"] is None


def test_the_text_format_shows_the_id_after_the_message() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "served", None, None)
    record.request_id = "r9"
    assert logs.TextFormatter().format(record).endswith(' INFO served request_id="r9"')
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "tick", None, None)
    assert logs.TextFormatter().format(plain).endswith(" INFO tick")


@pytest.mark.slow
def test_serve_writes_json_lines_with_the_request_id(tmp_path: Path) -> None:
    """``chameleon serve`` with CHAMELEON_LOG_FORMAT=json: uvicorn's lines are JSON too."""
    env = server_env(f"sqlite:///{tmp_path / 'chameleon.db'}", CHAMELEON_LOG_FORMAT="json")
    cli(env, "db", "upgrade")
    key = create_key(env)
    log = tmp_path / "server.log"
    with serving(env, log) as (base, _):
        headers = {"X-Request-ID": "served-7", "Authorization": f"Bearer {key}"}
        answer = httpx.get(f"{base}/uows/{unknown()}", headers=headers)
        assert answer.status_code == 404 and answer.headers["x-request-id"] == "served-7"
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert entries, log.read_text()
    access = [e for e in entries if e["logger"] == "uvicorn.access" and "/uows/" in e["message"]]
    assert [e["request_id"] for e in access] == ["served-7"], entries
