"""What every view of the board shares: the Watcher, the cached flat frame, the change check, the edits.

Pure Python and pandas (no Panel here), so the server-side functions are testable without a browser. One
:class:`BoardContext` serves every browser session of a ``lumo-hydra board`` process: the frame is cached
once, guarded by a lock, and reloaded when :meth:`BoardContext.changed` sees the store change.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lumo_hydra.errors import LumoValueError
from lumo_hydra.store.reader import edit_record

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["BoardContext", "EditRefused", "store_token"]


class EditRefused(LumoValueError):
    """A note/tag edit the board will not make (read-only board, or a run still writing its record)."""


def store_token(root: str | os.PathLike[str]) -> str:
    """A cheap signature of the store's run folders (the fallback when the Watcher has no
    ``change_token()``): the modification times of ``experiments/``, of each experiment folder and of
    each run folder. A new run, a removed one, and every atomic rewrite of ``run.json`` or ``metrics.json``
    (a rename into the run folder) change it; one ``scandir`` per experiment, no file is read."""
    exps = os.path.join(os.fspath(root), "experiments")
    parts: list[str] = []
    try:
        parts.append(str(os.stat(exps).st_mtime_ns))
        with os.scandir(exps) as it:
            exp_dirs = sorted(e.path for e in it if e.is_dir(follow_symlinks=False))
    except OSError:
        return "none"
    for d in exp_dirs:
        try:
            with os.scandir(d) as it:
                sigs = sorted(f"{e.name}:{e.stat(follow_symlinks=False).st_mtime_ns}" for e in it)
        except OSError:
            continue
        parts.append(d + "|" + ",".join(sigs))
    return str(hash("\n".join(parts)))


@dataclass
class BoardContext:
    """The Watcher of the board, whether edits are allowed, and the flat frame of every run (cached).

    ``watcher`` is a :class:`lumo_hydra.watcher.Watcher` (any object with ``root``, ``load``, ``record``
    and ``resolve``); ``df`` a fixed frame to show instead of the store's runs (``Watcher.panel(df)``:
    then :meth:`changed` is always ``False``).
    """

    watcher: Any
    read_only: bool = False
    df: Any = None
    _frame: Any = field(default=None, init=False, repr=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _lock: Any = field(default_factory=threading.RLock, init=False, repr=False)
    loaded_at: float = field(default=0.0, init=False)
    _memo_of: Any = field(default=None, init=False, repr=False)
    _memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)
    version: int = field(default=0, init=False)  # +1 at every change seen: each session compares its own

    def token(self) -> str:
        """The store's change token now (``Watcher.change_token()`` when it exists)."""
        w = self.watcher
        if hasattr(w, "change_token"):
            return str(w.change_token())
        return store_token(w.root)

    def frame(self) -> pd.DataFrame:
        """The flat frame (``load(flatten=True)``) of every run, oldest first; cached until :meth:`changed`
        (or :meth:`invalidate`) says otherwise. Do not modify it in place."""
        with self._lock:
            if self._frame is None:
                if self.df is not None:
                    self._frame = _flat(self.df)
                else:
                    before = self._token if self._token is not None else self.token()
                    self._frame = self.watcher.load(flatten=True)
                    # Watcher.change_token() also covers the runs the load saw unfinished, and differs at
                    # every call for a few seconds after a change: taken after the load it misses nothing.
                    # The fallback has neither property: the token from before the load is kept.
                    self._token = self.token() if hasattr(self.watcher, "change_token") else before
                self.loaded_at = time.time()
            return self._frame

    def memo(self, key: Any, make: Callable[[pd.DataFrame], Any]) -> Any:
        """``make(frame())``, computed once per frame and shared by every session (cleared when the
        frame is reloaded)."""
        with self._lock:
            frame = self.frame()
            if self._memo_of is not frame:
                self._memo_of, self._memo = frame, {}
            if key not in self._memo:
                self._memo[key] = make(frame)
            return self._memo[key]

    def changed(self) -> bool:
        """Whether the store changed since the frame was loaded (then the next :meth:`frame` reloads it).
        Runs still running are judged again at most every ``stale_after / 4`` seconds (a run whose
        process died becomes ``crashed`` without any file changing)."""
        if self.df is not None:
            return False
        with self._lock:
            tok = self.token()
            moved = tok != self._token
            if not moved and self._frame is not None and "status" in self._frame:
                stale = float(getattr(self.watcher, "stale_after", 120.0))
                if (self._frame["status"] == "running").any() and time.time() - self.loaded_at > stale / 4:
                    moved = True
            if moved:
                self._token = tok
                self._frame = None
                self.version += 1
            return moved

    def invalidate(self) -> None:
        """Forget the cached frame (after an edit made by the board itself)."""
        with self._lock:
            self._frame = None
            self._token = None
            self.version += 1

    # ---- edits: the code path of `lumo-hydra note` / `lumo-hydra tag` ---------------------------

    def _edit(self, run: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        if self.read_only:
            raise EditRefused(f"the board is read-only: run {run!r} was not changed (start it without --read-only)")
        w = self.watcher
        ref = w.resolve(run)
        rec = w.record(ref.info_dir)
        if rec.get("status") == "running":
            raise EditRefused(f"run {ref.test_name!r} is still running and its process rewrites run.json (one "
                              "writer per run): edit its note or tags once it has ended")
        new = edit_record(ref.info_dir, edit)
        self.invalidate()
        return new

    def set_note(self, run: str, text: str) -> dict[str, Any]:
        """Set the note of ``run`` (as ``lumo-hydra note RUN TEXT``); :class:`EditRefused` when not allowed."""
        text = str(text)

        def edit(rec: dict[str, Any]) -> None:
            rec["note"] = text

        return self._edit(run, edit)

    def set_tags(self, run: str, tags: str | Sequence[str]) -> dict[str, Any]:
        """Replace the tags of ``run`` (a list, or text split at commas and spaces)."""
        if isinstance(tags, str):
            tags = [t for t in tags.replace(",", " ").split() if t]
        new_tags: list[str] = []
        for t in tags:
            t = str(t).strip()
            if t and t not in new_tags:
                new_tags.append(t)

        def edit(rec: dict[str, Any]) -> None:
            rec["tags"] = new_tags

        return self._edit(run, edit)


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    """A frame given by the user (``Watcher.panel(df)``) with its nested (dict) columns flattened as the
    Watcher's ``flatten=True`` does: ``params.<path>``, ``metrics.<name>``, ``metrics.<name>.last``, ..."""
    nested = [c for c in df.columns if df[c].dtype == object and any(isinstance(v, dict) for v in df[c])]
    if not nested:
        return df.reset_index(drop=True)
    import pandas as pd

    parts = [df.drop(columns=nested).reset_index(drop=True)]
    for c in nested:
        sub = pd.json_normalize([v if isinstance(v, dict) else {} for v in df[c]], sep=".")
        if c == "metrics_last":
            sub.columns = [f"metrics.{k}.last" for k in sub.columns]
        else:
            sub.columns = [f"{c}.{k}" for k in sub.columns]
        parts.append(sub)
    return pd.concat(parts, axis=1)
