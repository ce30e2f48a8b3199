"""What shell completion offers: the environment names, partner IDs and service types of the repository in use.

Completion runs at every Tab: it reads hbsdeploy.yaml and the partner files' ID keys only (no schema check, no
template), and a file it cannot read offers nothing rather than an error in the middle of the command line.
"""

from __future__ import annotations

from pathlib import Path

from hbsdeploy.errors import HbsError
from hbsdeploy.load.partner import ID_KEYS


def _config(config_path: str | None) -> tuple[Path, object] | None:
    from hbsdeploy.load.config import find_config
    from hbsdeploy.load.yamlload import load_yaml

    try:
        path = find_config(config_path)
        return path, load_yaml(path).data
    except (HbsError, OSError, ValueError):
        return None


def environment_names(config_path: str | None = None) -> list[str]:
    """The environments of the hbsdeploy.yaml that --config, $HBSDEPLOY_CONFIG or the folder names, sorted."""
    found = _config(config_path)
    if found is None or not isinstance(found[1], dict):
        return []
    environments = found[1].get("environments")
    return sorted(str(name) for name in environments) if isinstance(environments, dict) else []


def service_type_names(config_path: str | None = None) -> list[str]:
    """The service types of the repository's partner schema (its own, or hbsdeploy's copy), in the portal's order."""
    from hbsdeploy.load.config import find_config, load_config

    try:
        return list(load_config(find_config(config_path)).schemas.service_types)
    except (HbsError, OSError, ValueError):
        return []


def partner_ids(config_path: str | None = None) -> list[str]:
    """The OperatorIDs and ProviderIDs written in the repository's partner files, sorted."""
    from hbsdeploy.load.config import find_config, load_config
    from hbsdeploy.load.yamlload import load_yaml

    try:
        files = load_config(find_config(config_path)).partner_files()
    except (HbsError, OSError, ValueError):
        return []
    ids: set[str] = set()
    for path in files:
        try:
            data = load_yaml(path).data
        except (HbsError, OSError, ValueError):
            continue
        if isinstance(data, dict):
            ids.update(value for key in ID_KEYS.values() if isinstance(value := data.get(key), str) and value)
    return sorted(ids)
