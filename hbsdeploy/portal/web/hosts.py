"""Browser hosts: threads that each own one Playwright and one Chromium, shared by every web portal of the process.

Playwright's sync objects belong to the thread that made them, so every call on a browser (and on its contexts and
pages) runs on its host's thread. A web portal borrows hosts for its contexts and closes only its contexts: the
browsers stay up for the next portal of the same process (a test run, or plan then apply in one command) and are
closed when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hbsdeploy.portal.web.browser import launch, sync_playwright

if TYPE_CHECKING:
    from playwright.sync_api import Browser

T = TypeVar("T")
_STOP = object()


class BrowserHost:
    """One thread with its own Playwright and browser; `call(fn)` runs `fn(browser)` there."""

    def __init__(self, executable: Path | None, headless: bool, name: str) -> None:
        self.executable = executable
        self.headless = headless
        self._tasks: queue.Queue[Any] = queue.Queue()
        self._playwright: Any = None
        self._browser: Browser | None = None
        self.launches = 0
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def call(self, operation: Callable[[Browser], T]) -> T:
        """Run `operation(browser)` on the host's thread and return its result (or raise its exception)."""
        future: Future[T] = Future()
        self._tasks.put((operation, future))
        return future.result()

    def _browser_now(self) -> Browser:
        if self._browser is None or not self._browser.is_connected():
            if self._playwright is None:
                self._playwright = sync_playwright().start()
            self._browser = launch(self._playwright, self.executable, headless=self.headless)
            self.launches += 1
        return self._browser

    def _serve(self) -> None:
        try:
            while True:
                task = self._tasks.get()
                if task is _STOP:
                    return
                operation, future = task
                try:
                    future.set_result(operation(self._browser_now()))
                except BaseException as exc:
                    future.set_exception(exc)
        finally:
            with contextlib.suppress(Exception):  # a browser that crashed has nothing left to close
                if self._browser is not None:
                    self._browser.close()
            with contextlib.suppress(Exception):
                if self._playwright is not None:
                    self._playwright.stop()

    def stop(self) -> None:
        """Close the browser and end the thread."""
        self._tasks.put(_STOP)
        self._thread.join(timeout=30)


_hosts: dict[tuple[str, bool], list[BrowserHost]] = {}
_hosts_lock = threading.Lock()


def host(executable: Path | None, headless: bool, index: int) -> BrowserHost:
    """The process's `index`-th host for this browser (started on first use)."""
    key = (str(executable), headless)
    with _hosts_lock:
        found = _hosts.setdefault(key, [])
        while len(found) <= index:
            found.append(BrowserHost(executable, headless, f"hbsdeploy-browser-{len(found)}"))
        return found[index]


@atexit.register
def stop_all() -> None:
    """Close every browser of the process (at exit)."""
    with _hosts_lock:
        everything = [h for hosts in _hosts.values() for h in hosts]
        _hosts.clear()
    for each in everything:
        each.stop()
