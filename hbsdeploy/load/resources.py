"""Files shipped with hbsdeploy: the JSON Schemas and the default templates."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parents[1]  # the hbsdeploy package folder


def _shipped(folder: str) -> Path:
    # An installed wheel carries copies under _data/; a source checkout (or editable install) has them at the top.
    bundled = _PACKAGE / "_data" / folder
    return bundled if bundled.is_dir() else _PACKAGE.parent / folder


def schemas_dir() -> Path:
    """The folder of hbsdeploy's JSON Schemas and portal contract."""
    return _shipped("schemas")


def default_templates_dir() -> Path:
    """The folder of the default payload templates."""
    return _shipped("templates")


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema from schemas/, e.g. `partner` for partner.schema.json."""
    with (schemas_dir() / f"{name}.schema.json").open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema
