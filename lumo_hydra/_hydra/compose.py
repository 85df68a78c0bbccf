"""Hydra's ConfigStore and compose API, for ``Params.store`` and ``Params.from_hydra``.

``lumo_hydra.params`` calls these inside functions, so importing ``Params`` never loads Hydra.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["store_node", "compose_isolated"]

_SCHEMA_NAMES = itertools.count()


def store_node(name: str, node: Any, group: str | None = None, package: str | None = None,
               provider: str | None = "lumo_hydra") -> None:
    """Register ``node`` (a dataclass, a mapping...) in Hydra's ConfigStore under ``group/name``."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=name, node=node, group=group, package=package, provider=provider)


def _forget_stored(name: str) -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().repo.pop(f"{name}.yaml", None)


def compose_isolated(config_path: str | os.PathLike[str] | None, config_name: str | None,
                     overrides: Sequence[str] = (), schema: Any = None) -> Any:
    """A config composed by Hydra's compose API, leaving the process as it was.

    ``config_path`` is a folder (relative to the current folder, or absolute) or None. With no
    ``config_name``, ``schema`` (a dataclass) is composed: it is stored in the ConfigStore for the time
    of the call only. Neither the working folder nor ``sys.argv`` changes, and an already initialised
    Hydra is restored afterwards. Returns the composed ``DictConfig`` (not validated).
    """
    from hydra import compose, initialize, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    schema_name = None
    if config_name is None:
        schema_name = f"_lumo_params_{os.getpid():x}_{next(_SCHEMA_NAMES)}"
        store_node(schema_name, schema, provider=None)
    backup = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        if config_path is not None:
            ctx: Any = initialize_config_dir(config_dir=os.path.abspath(os.fspath(config_path)), version_base="1.3")
        else:
            ctx = initialize(config_path=None, version_base="1.3")
        with ctx:
            return compose(config_name=config_name or schema_name, overrides=list(overrides))
    finally:
        restore_gh_from_backup(backup)
        if schema_name is not None:
            _forget_stored(schema_name)
