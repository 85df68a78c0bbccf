"""Where things live: the store root (``LUMO_HOME``) and the reader-side cache. Nothing is created on import."""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = "~/.lumo-hydra"
DEFAULT_CACHE = "~/.cache/lumo-hydra"


def lumo_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The store root: ``home`` if given, else ``$LUMO_HOME``, else ``~/.lumo-hydra``. Not created here."""
    if home is None or str(home) == "":
        home = os.environ.get("LUMO_HOME") or DEFAULT_HOME
    return Path(os.path.expanduser(os.fspath(home))).absolute()


def cache_dir(sub: str = "") -> Path:
    """Local, rebuildable caches (Watcher index, dependency lock cache): ``$LUMO_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/lumo-hydra``, else ``~/.cache/lumo-hydra``. Never on the shared store. Not created here."""
    root = os.environ.get("LUMO_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = os.path.join(xdg, "lumo-hydra") if xdg else DEFAULT_CACHE
    p = Path(os.path.expanduser(root)).absolute()
    return p / sub if sub else p
