"""The saved browser session of a web portal: `<state_dir>/web-session-<env>.json`, mode 0600, bound to one portal.

The file wraps Playwright's storage_state (cookies, local storage) with the portal's address, so that a session of
another portal is refused instead of being sent there. It holds session cookies: it is never printed or committed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import stat
from pathlib import Path
from typing import Any

from hbsdeploy.atomic import write_atomic
from hbsdeploy.load.yamlload import display_path
from hbsdeploy.portal import PortalAuthError

FORMAT = "hbsdeploy-web-session/1"


def session_file(state_dir: Path, environment: str) -> Path:
    """Where an environment's session is kept."""
    return state_dir / f"web-session-{environment}.json"


def _login_hint(environment: str) -> str:
    return f"delete it and run `hbsdeploy login --env {environment}`"


def read_session(path: Path, portal_url: str, environment: str) -> dict[str, Any] | None:
    """The storage_state saved for `portal_url`, or None when there is no file; a file that is unreadable, readable
    by others, not one hbsdeploy wrote, or of another portal is a PortalAuthError (one line, never its content)."""
    shown = display_path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise PortalAuthError(f"session file {shown} cannot be read ({exc.strerror}); {_login_hint(environment)}") \
            from None
    if not stat.S_ISREG(info.st_mode):
        raise PortalAuthError(f"session file {shown} is not a file; {_login_hint(environment)}")
    if info.st_mode & 0o077:
        raise PortalAuthError(f"session file {shown} is readable by other users (mode {stat.S_IMODE(info.st_mode):o}); "
                              f"it holds a login: {_login_hint(environment)}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise PortalAuthError(f"session file {shown} is unreadable (not a session hbsdeploy saved); "
                              f"{_login_hint(environment)}") from None
    state = data.get("storage_state") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(state, dict) \
            or not isinstance(state.get("cookies", []), list):
        raise PortalAuthError(f"session file {shown} is unreadable (not a session hbsdeploy saved); "
                              f"{_login_hint(environment)}")
    if data.get("portal") != portal_url:
        other = str(data.get("portal"))[:200]
        raise PortalAuthError(f"session file {shown} belongs to portal {other!r}, not {portal_url!r}; "
                              f"{_login_hint(environment)}")
    return state


def write_session(path: Path, portal_url: str, storage_state: dict[str, Any]) -> None:
    """Save a session atomically, mode 0600."""
    data = {
        "format": FORMAT,
        "portal": portal_url,
        "saved": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "storage_state": storage_state,
    }
    write_atomic(path, json.dumps(data, sort_keys=True), mode=0o600)


def remove_session(path: Path) -> None:
    """Forget a session that the portal no longer accepts."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
