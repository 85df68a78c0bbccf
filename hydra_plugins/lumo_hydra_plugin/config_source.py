"""``lumo-pkg://<package>``: Hydra's ``pkg://`` config source, made cheap for the files lumo-hydra ships.

Hydra composes every job's config again (twice per job in a multirun), and ``pkg://`` walks the
package with ``importlib.resources`` on every lookup and re-reads and re-parses every YAML file on
every load. The files under ``lumo_hydra/conf`` are package data: this source lists them once per
process and parses each file once (again only if its modification time changes), then hands Hydra a
fresh copy on every load. Same answers as ``pkg://``, for any package (also zipped ones).
"""
from __future__ import annotations

import builtins
import copy
import os
from typing import Any

from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource

# package -> (root, folders, files), paths relative to the root with "/" separators ("" is the root)
_INDEX: dict[str, tuple[Any, frozenset, frozenset]] = {}
# (package, file) -> (modification time or None, header, parsed config)
_LOADED: dict[tuple[str, str], tuple[int | None, dict[str, str | None], Any]] = {}


def _walk(node: Any, prefix: str, dirs: set, files: set) -> None:
    for child in node.iterdir():
        rel = f"{prefix}{child.name}"
        if child.is_dir():
            if child.name != "__pycache__":
                dirs.add(rel)
                _walk(child, rel + "/", dirs, files)
        else:
            files.add(rel)


def _mtime(res: Any) -> int | None:
    try:
        return os.stat(res).st_mtime_ns if isinstance(res, os.PathLike) else None
    except OSError:
        return None


class LumoPackageConfigSource(ConfigSource):
    """A package's config files for Hydra, listed once and parsed once per process."""

    def __init__(self, provider: str, path: str) -> None:
        super().__init__(provider=provider, path=path)
        self.path = self.path.replace("/", ".").rstrip(".")  # as pkg:// does

    @staticmethod
    def scheme() -> str:
        return "lumo-pkg"

    def _index(self) -> tuple[Any, frozenset, frozenset]:
        idx = _INDEX.get(self.path)
        if idx is None:
            from importlib import resources

            root: Any = None
            dirs: set = set()
            files: set = set()
            try:
                root = resources.files(self.path)
                if root.is_dir():
                    dirs.add("")
                    _walk(root, "", dirs, files)
            except (ValueError, ModuleNotFoundError, TypeError, OSError):
                root = None
            idx = (root, frozenset(dirs), frozenset(files))
            if root is not None:  # (a package that cannot be found yet is looked for again next time)
                _INDEX[self.path] = idx
        return idx

    @staticmethod
    def _norm(config_path: str) -> str:
        return os.path.normpath(config_path).replace(os.sep, "/").strip("/") if config_path not in ("", ".") else ""

    def load_config(self, config_path: str) -> ConfigResult:
        name = self._norm(self._normalize_file_name(config_path))
        root, _, files = self._index()
        if name not in files:
            raise ConfigLoadError(f"Config not found : {name}")
        res = root.joinpath(name)
        key = (self.path, name)
        mtime = _mtime(res)
        hit = _LOADED.get(key)
        if hit is None or hit[0] != mtime:
            import io

            from omegaconf import OmegaConf

            text = res.read_bytes().decode("utf-8")
            cfg = OmegaConf.load(io.StringIO(text))
            hit = _LOADED[key] = (mtime, ConfigSource._get_header_dict(text[:512]), cfg)
        return ConfigResult(config=copy.deepcopy(hit[2]), path=f"{self.scheme()}://{self.path}",
                            provider=self.provider, header=dict(hit[1]))

    def available(self) -> bool:
        return "__init__.py" in self._index()[2]

    def is_group(self, config_path: str) -> bool:
        return self._norm(config_path) in self._index()[1]

    def is_config(self, config_path: str) -> bool:
        return self._norm(self._normalize_file_name(config_path)) in self._index()[2]

    def list(self, config_path: str, results_filter: ObjectType | None) -> builtins.list[str]:
        base = self._norm(config_path)
        prefix = f"{base}/" if base else ""
        _, dirs, files = self._index()
        names = {p[len(prefix):].split("/", 1)[0] for p in (*dirs, *files) if p.startswith(prefix) and p != base}
        out: list[str] = []
        for n in names:
            self._list_add_result(files=out, file_path=f"{prefix}{n}", file_name=n, results_filter=results_filter)
        return sorted(set(out))
