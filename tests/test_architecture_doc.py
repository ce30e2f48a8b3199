"""docs/architecture.md names real code: every `folder.module.name` it cites resolves in hbsdeploy."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from tests.test_architecture import LAYERS

DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"
CITED = re.compile(r"`([a-z_]+(?:\.[A-Za-z_]+)+)(?:\([^`]*\))?`")


def unresolved(text: str) -> list[str]:
    """The dotted names in `text` that start with a folder of hbsdeploy and name no module or attribute."""
    missing = []
    for name in sorted(set(CITED.findall(text))):
        parts = name.split(".")
        if parts[0] not in LAYERS or parts[-1] == "py":  # a file name (`portal.py`), not a dotted name
            continue
        for cut in range(len(parts), 0, -1):
            try:
                target: object = importlib.import_module("hbsdeploy." + ".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attribute in parts[cut:]:
                target = getattr(target, attribute, None)
            if target is None:
                missing.append(name)
            break
        else:
            missing.append(name)
    return missing


def test_every_cited_function_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert len(CITED.findall(text)) > 15
    assert unresolved(text) == []


def test_a_stale_name_is_found() -> None:
    assert unresolved("`plan.build.make_plan`, `plan.build.no_such_function`, `nowhere.x`, `apply.gone.f()`, "
                      "`portal.py`") == [
        "apply.gone.f", "plan.build.no_such_function"]
