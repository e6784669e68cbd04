"""A daemon thread that calls a function every few seconds until stopped: how the model holder
and the drift monitor's baseline follower watch the registry's alias."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


class Poller:
    """Calls `poll` every `seconds` in a daemon thread named `name`. An exception is logged and
    the next call retries: the poller must outlive any surprise."""

    def __init__(self, name: str, seconds: float, poll: Callable[[], object]) -> None:
        self.name = name
        self.seconds = seconds
        self.poll = poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.poll()
            except Exception:
                logging.getLogger(__name__).exception("%s: poll failed", self.name)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
