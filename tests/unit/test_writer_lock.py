"""The in-process queue for SQLite's single writer."""

from __future__ import annotations

import threading
import time

import pytest

from chameleon_workflow.store.writer_lock import WriterQueue


def test_release_by_a_thread_that_does_not_hold_it_is_an_error() -> None:
    q = WriterQueue()
    with pytest.raises(RuntimeError):
        q.release()
    q.acquire()
    errors: list[BaseException] = []

    def intruder() -> None:
        try:
            q.release()
        except RuntimeError as exc:
            errors.append(exc)

    t = threading.Thread(target=intruder)
    t.start()
    t.join()
    assert len(errors) == 1
    q.release()


def test_the_holder_may_re_enter() -> None:
    q = WriterQueue()
    q.acquire()
    q.acquire()
    q.release()
    q.release()
    q.acquire()  # free again
    q.release()


def test_waiters_are_served_in_arrival_order() -> None:
    q = WriterQueue()
    q.acquire()
    order: list[int] = []
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda i=i: (q.acquire(), order.append(i), q.release()))
        t.start()
        threads.append(t)
        while q._next_ticket < i + 2:  # this thread has taken its ticket: start the next
            time.sleep(0.001)
    q.release()
    for t in threads:
        t.join()
    assert order == [0, 1, 2, 3, 4]
