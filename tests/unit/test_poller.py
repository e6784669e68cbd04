"""infra.poller: calls again and again, outlives an exception, stops when asked."""

from __future__ import annotations

import threading
import time

from infra.poller import Poller


def test_poller_keeps_polling_through_an_exception_and_stops() -> None:
    calls: list[float] = []
    third = threading.Event()

    def poll() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("registry hiccup")
        if len(calls) >= 3:
            third.set()

    poller = Poller("test-poller", 0.01, poll)
    poller.start()
    assert third.wait(5), "the poller stopped after the exception"
    poller.stop()
    stopped_at = len(calls)
    time.sleep(0.1)
    assert len(calls) == stopped_at, "it polled after stop()"
