"""A large, legitimate import does not stall a real server: /health is answered meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.test_examples_over_http import server  # noqa: F401  (the running server)


def large_chain(stages: int) -> str:
    """A valid workflow without aliases: ALPHA, a chain of ``stages`` BETA roles, then OMEGA;
    EPSILON and TAU both send work back to the first stage (so there are no warnings)."""
    lines = [
        "workflow:",
        "  name: Long_Chain",
        "roles:",
        "  - {name: Start, role_type: ALPHA}",
        "  - {name: Finish, role_type: OMEGA}",
        "  - {name: Fixer, role_type: EPSILON}",
        "  - {name: Clock, role_type: TAU}",
        *(
            f"  - {{name: Stage_{n:05d}, role_type: BETA, strategy: HOMOGENEOUS, "
            f"description: stage {n} of a long chain}}"
            for n in range(stages)
        ),
        "interactions:",
        "  - {name: Done}",
        "  - {name: Errors}",
        "  - {name: Timeouts}",
        *(f"  - {{name: Queue_{n:05d}}}" for n in range(stages)),
        "components:",
        "  - {name: Start_Out, role: Start, interaction: Queue_00000, direction: OUTBOUND}",
        "  - {name: Finish_In, role: Finish, interaction: Done, direction: INBOUND, "
        "guardian: {type: CERBERUS}}",
        "  - {name: Fixer_In, role: Fixer, interaction: Errors, direction: INBOUND, "
        "guardian: {type: PASS_THRU}}",
        "  - {name: Fixer_Out, role: Fixer, interaction: Queue_00000, direction: OUTBOUND}",
        "  - {name: Clock_In, role: Clock, interaction: Timeouts, direction: INBOUND}",
        "  - {name: Clock_Out, role: Clock, interaction: Queue_00000, direction: OUTBOUND}",
        "  - {name: Stage_Late, role: Stage_00000, interaction: Timeouts, direction: OUTBOUND}",
        "  - {name: Stage_Fail, role: Stage_00000, interaction: Errors, direction: OUTBOUND}",
    ]
    for n in range(stages):
        after = f"Queue_{n + 1:05d}" if n + 1 < stages else "Done"
        stage = f"Stage_{n:05d}"
        lines.append(
            f"  - {{name: {stage}_In, role: {stage}, interaction: Queue_{n:05d}, "
            "direction: INBOUND}"
        )
        lines.append(
            f"  - {{name: {stage}_Out, role: {stage}, interaction: {after}, direction: OUTBOUND}}"
        )
    return "\n".join(lines) + "\n"


LARGE = large_chain(3_200)


@pytest.fixture
def client(server: tuple[str, str]) -> Iterator[httpx.Client]:  # noqa: F811
    base, key = server
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/yaml"}
    with httpx.Client(base_url=base, timeout=300, headers=headers) as c:
        yield c


def test_health_is_answered_while_a_large_import_is_in_progress(client: httpx.Client) -> None:
    assert 900_000 < len(LARGE.encode()) < 1_048_576  # legitimate: under the default body cap
    done = threading.Event()
    imported: list[httpx.Response] = []

    def import_large() -> None:
        try:
            imported.append(client.post("/templates", content=LARGE))
        finally:
            done.set()

    worker = threading.Thread(target=import_large)
    worker.start()
    answered_during_import = 0
    while not done.is_set():
        health = client.get("/health")
        assert health.status_code == 200
        if not done.is_set():
            answered_during_import += 1
        done.wait(0.05)  # poll, leaving the server's CPU to the import
    worker.join()
    assert imported[0].status_code == 201, imported[0].text
    assert imported[0].json()["warnings"] == []
    # An event loop busy parsing would answer at most the /health requests that arrived
    # before the body was read; several answered in flight means the parse ran elsewhere.
    assert answered_during_import >= 5
