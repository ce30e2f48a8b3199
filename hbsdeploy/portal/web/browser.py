"""Finding and launching the browser: Debian's Chromium, the configured executable, or Playwright's own."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hbsdeploy.portal import PortalConfigError
from hbsdeploy.text import escape_line

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "install one with `apt-get install chromium` or `playwright install chromium`, or set `browser:`"
# No network for the browser's own services (updates, sync, safe browsing): it talks to the portal only.
# No extensions; shared memory in /tmp rather than a small /dev/shm (containers). Images stay on: the write
# evidence (screenshots) must show the page as a person sees it.
BASE_ARGS = ("--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage")


class BrowserMissing(PortalConfigError):
    """No browser (or no Playwright) to drive the web portal."""


def sync_playwright() -> Any:
    """Playwright's sync entry point, imported only now (commands on other portals never load it)."""
    try:
        from playwright.sync_api import sync_playwright as entry
    except ImportError:
        raise BrowserMissing("the web portal needs Playwright: pip install 'hbsdeploy[web]'") from None
    return entry()


def launch_args(*, as_root: bool | None = None) -> list[str]:
    """Chromium's flags: --no-sandbox only when running as root (the sandbox refuses root)."""
    root = os.geteuid() == 0 if as_root is None else as_root
    return (["--no-sandbox"] if root else []) + list(BASE_ARGS)


def find_browser(configured: Path | None, playwright_default: Path | None = None,
                 system: Path = SYSTEM_CHROMIUM) -> Path | None:
    """The executable to launch: `browser:` if set (it must exist), else /usr/bin/chromium, else None (Playwright's
    own download, if there is one); a BrowserMissing names what is missing and how to install a browser."""
    if configured is not None:
        if not _executable(configured):
            raise BrowserMissing(f"browser {configured} is not an executable file; {INSTALL_HINT}")
        return configured
    if _executable(system):
        return system
    if playwright_default is not None and _executable(playwright_default):
        return None
    raise BrowserMissing(f"no browser found ({system} is missing and Playwright has downloaded none); {INSTALL_HINT}")


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def launch(playwright: Playwright, configured: Path | None, *, headless: bool = True) -> Browser:
    """A Chromium browser, headless unless asked otherwise."""
    executable = find_browser(configured, Path(playwright.chromium.executable_path))
    try:
        # handle_sigint=False: a terminal's Ctrl-C reaches the whole process group, Playwright's driver included,
        # which by default closes the browser at once and fails the write in flight; hbsdeploy handles Ctrl-C itself
        # (no new write starts, the one in flight finishes, then the report) and closes the browser on exit.
        return playwright.chromium.launch(executable_path=executable, headless=headless, args=launch_args(),
                                          handle_sigint=False)
    except Exception as exc:  # Playwright's Error: a browser that does not start
        first = escape_line(str(exc), 300)
        raise BrowserMissing(f"the browser {executable or 'of Playwright'} did not start ({first}); {INSTALL_HINT}") \
            from None
