"""Where things live: every path of a store root, the environment variables and the snapshot ref prefix.

One object, :class:`StoreLayout`, knows the store's folder and file names (docs/store.md); nothing else
in lumo_hydra spells them. Nothing is created on import or by building a layout.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: environment variable naming the store root
ENV_HOME = "LUMO_HOME"
#: environment variable naming the reader-side cache folder
ENV_CACHE = "LUMO_CACHE_DIR"
#: environment variable a rerun sets to the test_name it re-runs
ENV_RERUN_OF = "LUMO_RERUN_OF"
DEFAULT_HOME = "~/.lumo-hydra"
DEFAULT_CACHE = "~/.cache/lumo-hydra"

#: every ref lumo-hydra writes lives under this namespace of the user's repository
REF_NAMESPACE = "refs/lumo/"
#: code snapshots: ``<SNAPSHOT_REF_PREFIX>/<exp_name>/<test_name>`` or ``.../sweeps/<sweep_id>``
SNAPSHOT_REF_PREFIX = REF_NAMESPACE + "snapshots"

# the files of a run's info folder
RUN_JSON = "run.json"
METRICS_JSON = "metrics.json"
HISTORY_JSONL = "history.jsonl"
HEARTBEAT = "heartbeat"
PARAMS_JSON = "params.json"
SWEEP_JSON = "sweep.json"
#: the file in the store root holding the store id (written once, never changed)
STORE_ID = "store-id"
_HEX = frozenset("0123456789abcdef")  # a store id: 32 of them (a set, not a regex: issue 18)


def lumo_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The store root: ``home`` if given, else ``$LUMO_HOME``, else ``~/.lumo-hydra``. Not created here."""
    if home is None or str(home) == "":
        home = os.environ.get(ENV_HOME) or DEFAULT_HOME
    return Path(os.path.expanduser(os.fspath(home))).absolute()


#: subfolders of :func:`cache_dir`: the Watcher's index and frame caches, the dependency-lock cache
WATCHER_CACHE = "watcher"
LOCK_CACHE = "locks"


def cache_dir(sub: str = "") -> Path:
    """Local, rebuildable caches (Watcher index, dependency lock cache): ``$LUMO_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/lumo-hydra``, else ``~/.cache/lumo-hydra``. Never on the shared store. Not created here."""
    root = os.environ.get(ENV_CACHE)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = os.path.join(xdg, "lumo-hydra") if xdg else DEFAULT_CACHE
    p = Path(os.path.expanduser(root)).absolute()
    return p / sub if sub else p


class StoreLayout:
    """Every path of one store root (docs/store.md). Plain data: it pickles and compares by root.

    ``StoreLayout()`` is the root of ``$LUMO_HOME``; ``StoreLayout(home)`` any other root. Methods return
    :class:`~pathlib.Path` objects and create nothing.
    """

    EXPERIMENTS = "experiments"
    BLOB = "blob"
    CACHE = "cache"
    SWEEPS = "sweeps"
    LOCKS = "locks"
    DIARY = "diary"
    JOBS = "jobs"

    __slots__ = ("root",)

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        self.root: Path = lumo_home(home)

    @classmethod
    def of_info_dir(cls, info_dir: str | os.PathLike[str]) -> tuple[StoreLayout, str, str]:
        """The layout, exp_name and test_name of a run's info folder ``<root>/experiments/<exp>/<test>``."""
        p = Path(info_dir).absolute()
        return cls(p.parent.parent.parent), p.parent.name, p.name

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, StoreLayout) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __repr__(self) -> str:
        return f"StoreLayout({str(self.root)!r})"

    def __reduce__(self) -> Any:
        return (StoreLayout, (str(self.root),))

    # -- runs ----------------------------------------------------------------------------------
    @property
    def experiments_dir(self) -> Path:
        return self.root / self.EXPERIMENTS

    @property
    def blob_root(self) -> Path:
        return self.root / self.BLOB

    @property
    def cache_root(self) -> Path:
        return self.root / self.CACHE

    def exp_dir(self, exp_name: str) -> Path:
        """The folder holding every run of one experiment."""
        return self.experiments_dir / exp_name

    def info_dir(self, exp_name: str, test_name: str) -> Path:
        """A run's info folder (its small records)."""
        return self.experiments_dir / exp_name / test_name

    def blob_dir(self, exp_name: str, test_name: str) -> Path:
        """A run's folder for large files (checkpoints)."""
        return self.blob_root / exp_name / test_name

    def cache_dir(self, exp_name: str, test_name: str) -> Path:
        """A run's folder for disposable files."""
        return self.cache_root / exp_name / test_name

    def run_folders(self, exp_name: str, test_name: str) -> list[Path]:
        """The info, blob and cache folders of a run (some may not exist)."""
        return [self.info_dir(exp_name, test_name), self.blob_dir(exp_name, test_name),
                self.cache_dir(exp_name, test_name)]

    # -- the store id --------------------------------------------------------------------------
    @property
    def store_id_file(self) -> Path:
        """``<root>/store-id``: this store's id (32 hex digits), written once by :func:`ensure_store_id`."""
        return self.root / STORE_ID

    # -- sweeps --------------------------------------------------------------------------------
    @property
    def sweeps_dir(self) -> Path:
        return self.root / self.SWEEPS

    def sweep_dir(self, sweep_id: str) -> Path:
        return self.sweeps_dir / sweep_id

    def sweep_record(self, sweep_id: str) -> Path:
        """``sweeps/<id>/sweep.json``, written once by the launching process."""
        return self.sweeps_dir / sweep_id / SWEEP_JSON

    def sweep_jobs_dir(self, sweep_id: str) -> Path:
        """``sweeps/<id>/jobs/``: one empty marker ``<job_num>.<test_name>`` per job."""
        return self.sweeps_dir / sweep_id / self.JOBS

    def sweep_marker(self, sweep_id: str, job_num: Any, test_name: str) -> Path:
        return self.sweep_jobs_dir(sweep_id) / f"{job_num}.{test_name}"

    # -- locks and the diary -------------------------------------------------------------------
    @property
    def locks_dir(self) -> Path:
        return self.root / self.LOCKS

    @classmethod
    def lock_relpath(cls, digest: str) -> str:
        """The lock file's path relative to the root, as ``run.json['lock']['file']`` records it."""
        return f"{cls.LOCKS}/{digest}.json"

    def lock_file(self, digest: str) -> Path:
        return self.root / self.lock_relpath(digest)

    @property
    def diary_dir(self) -> Path:
        return self.root / self.DIARY

    def diary_file(self, day: str) -> Path:
        """``diary/<YYYY-MM-DD>.log``."""
        return self.diary_dir / f"{day}.log"


def read_store_id(home: str | os.PathLike[str] | None = None) -> str | None:
    """The id of the store at ``home`` (see :func:`ensure_store_id`), or ``None`` when it has none yet
    (or the file is not a valid id: then nothing is proven to belong to this store)."""
    try:
        with open(StoreLayout(home).store_id_file, encoding="utf-8") as f:
            text = f.read(100).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) == 32 and _HEX.issuperset(text) else None


def ensure_store_id(home: str | os.PathLike[str] | None = None) -> str:
    """The id of the store at ``home``, created once: a random 32-hex-digit id in ``<root>/store-id``.

    The file is written beside and hard-linked into place (``os.link`` fails if it exists), so two
    writers racing on a new store agree on one id; it is never rewritten. A file that holds no valid id
    (damaged) is left alone and raises ``OSError``: snapshots then carry no store id.
    """
    layout = StoreLayout(home)
    found = read_store_id(layout.root)
    if found is not None:
        return found
    import uuid  # lazy: only the first snapshot of a store needs it

    layout.root.mkdir(parents=True, exist_ok=True)
    new = uuid.uuid4().hex
    tmp = layout.root / f".{STORE_ID}.{new}.tmp"
    try:
        with open(tmp, "x", encoding="ascii") as f:
            f.write(new + "\n")
        try:
            os.link(tmp, layout.store_id_file)
        except FileExistsError:
            pass
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    found = read_store_id(layout.root)
    if found is None:
        raise OSError(f"the store id file {str(layout.store_id_file)!r} holds no valid id; "
                      "move it away to let lumo-hydra write a new one")
    return found
