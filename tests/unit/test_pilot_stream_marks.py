"""The live stream's reader: which rows it hands on, and how far its low-water mark moves.

Rows are given as the table would return them (``after(mark)``, oldest first); on PostgreSQL
id n may commit after n + 1, so a missing id is waited for a while and delivered late.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chameleon_workflow.api import stream
from chameleon_workflow.api.stream import Broadcaster, Subscription
from chameleon_workflow.engine.core import Engine
from chameleon_workflow.settings import Settings


@pytest.fixture
def broadcaster(tmp_path: Path) -> Iterator[Broadcaster]:
    engine = Engine(Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}"))
    try:
        b = Broadcaster(engine)
        b._cursor = 0
        yield b
    finally:
        engine.close()


def rows(*ids: int, instance: Any = None) -> list[dict[str, Any]]:
    return [{"id": i, "kind": "instance.paused", "instance_id": instance} for i in ids]


def listen(b: Broadcaster, instance: Any = None) -> Subscription:
    sub = Subscription(instance)
    b._subs.add(sub)
    return sub


def ids(sub: Subscription) -> list[int]:
    got = [e["id"] for e in sub.pending]
    sub.pending.clear()
    return got


def test_a_missing_id_holds_the_mark_until_it_commits(broadcaster: Broadcaster) -> None:
    sub = listen(broadcaster)
    broadcaster._deliver(rows(1, 2, 4))
    assert (ids(sub), broadcaster._cursor) == ([1, 2, 4], 2)
    broadcaster._deliver(rows(4))  # 3 still running: 4 is not sent twice
    assert (ids(sub), broadcaster._cursor) == ([], 2)
    broadcaster._deliver(rows(3, 4))  # 3 committed late
    assert (ids(sub), broadcaster._cursor) == ([3], 4)
    assert broadcaster._seen == set() and broadcaster._gaps == {}


def test_a_missing_id_is_given_up_after_the_grace(
    broadcaster: Broadcaster, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = listen(broadcaster)
    broadcaster._deliver(rows(1, 3))
    assert broadcaster._cursor == 1
    monkeypatch.setattr(stream, "GAP_SECONDS", 0.0)  # a rolled-back transaction's id
    broadcaster._deliver(rows(3))
    assert (ids(sub), broadcaster._cursor) == ([1, 3], 3)
    broadcaster._deliver(rows(2))  # too late: at or below the mark
    assert ids(sub) == []


def test_a_huge_jump_is_not_waited_for(broadcaster: Broadcaster) -> None:
    sub = listen(broadcaster)
    far = stream.MAX_GAP_IDS + 10
    broadcaster._deliver(rows(1, far))
    assert (ids(sub), broadcaster._cursor, broadcaster._gaps) == ([1, far], far, {})


def test_only_the_filtered_instance_and_a_slow_client_is_let_go(
    broadcaster: Broadcaster, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = listen(broadcaster, "a")
    everything = listen(broadcaster)
    broadcaster._deliver(rows(1, instance="b") + rows(2, instance="a"))
    assert ids(mine) == [2]
    monkeypatch.setattr(stream, "QUEUE_SIZE", 2)
    broadcaster._deliver(rows(3, 4, instance="a"))  # 1 and 2 still wait in "everything"
    assert everything.done and everything not in broadcaster._subs
    assert [e["id"] for e in everything.pending] == [1, 2]  # sent, then the stream ends
    assert ids(mine) == [3, 4] and not mine.done
