"""The standard experiment hooks (lumo's ExpHooks): GitCommit, LockFile, LastCmd, RecordAbort, Diary, FinalReport.

A hook gets the ``Experiment`` at ``on_start`` (after the start record is written) and at ``on_end``
(after the end status is set, before the end record is written; a hook with ``after_record = True``,
the Diary, after it, and only once it is on disk). A hook that raises is recorded as
``hooks[Name] = {loaded: False, msg: ...}`` and never breaks the run; ``enabled=False`` switches a
hook off (recorded as ``disabled``). Hooks hold only plain data, so they pickle (the Hydra callback
carries them to remote jobs). No Hydra here.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from lumo_hydra.record.console import ConsoleOutput
from lumo_hydra.record.secrets import Masker, mask_argv, shell_quote
from lumo_hydra.store.layout import StoreLayout

if TYPE_CHECKING:  # pragma: no cover
    from lumo_hydra.record.experiment import Experiment

__all__ = ["ExpHook", "GitCommit", "LockFile", "LastCmd", "RecordAbort", "Diary", "FinalReport",
           "HOOKS", "HOOK_SWITCHES", "HookSpec", "build_hooks", "default_hooks", "build_command", "format_metrics",
           "end_hooks"]

logger = logging.getLogger("lumo_hydra")


class ExpHook:
    """Base class of experiment hooks. Subclasses override ``on_start`` and/or ``on_end``.

    ``msg`` (set by the hook during ``on_start``) is recorded in ``hooks[name]['msg']``. ``quick``: the
    hook's ``on_start`` takes no noticeable time; when every enabled hook is quick, the start record is
    written once, after the hooks (otherwise also once before them, so a slow hook never leaves a run
    folder without a record). Objects that are not ``ExpHook`` count as slow.
    """

    quick = True
    #: ``on_end`` runs after the end record is written, and only if it was written (the Diary: the diary
    #: never says a run ended while ``run.json`` could not say so, e.g. on a full disk; issue 11.2)
    after_record = False

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = bool(enabled)
        self.msg = ""

    @property
    def name(self) -> str:
        return type(self).__name__

    def on_start(self, exp: Experiment) -> None:
        """Called once the run folder is claimed and the start record written."""

    def on_end(self, exp: Experiment) -> None:
        """Called when the run ends (status, end time and exception already set)."""

    def __repr__(self) -> str:
        return f"{self.name}(enabled={self.enabled})"


class GitCommit(ExpHook):
    """Record the code snapshot as ``run.json['git']``.

    ``result``: a snapshot already made (e.g. once per sweep by the launching process): recorded as is,
    with no git work. Otherwise ``lumo_hydra.gitsnap.snapshot(path or cwd)`` is called, with a ref name
    that includes ``<exp_name>/<test_name>``.
    """

    def __init__(self, result: dict[str, Any] | None = None, path: str | None = None, enabled: bool = True) -> None:
        super().__init__(enabled)
        self.result = result
        self.path = path

    @property
    def quick(self) -> bool:  # type: ignore[override]
        return self.result is not None  # a snapshot taken here runs git

    def on_start(self, exp: Experiment) -> None:
        if self.result is not None:
            git = dict(self.result)
            self.msg = "snapshot given by the launching process"
        else:
            from lumo_hydra.record.gitsnap import snapshot  # lazy: only runs that snapshot need it

            git = snapshot(self.path or os.getcwd(), name=_ref_name(exp), store=exp.root,
                           owner=f"experiments/{exp.exp_name}/{exp.test_name}")  # gc keeps it while the run exists
            self.msg = ""
        exp.record["git"] = git
        if isinstance(git, dict) and git.get("repo"):
            exp.record["execute"]["repo"] = git["repo"]


def _ref_name(exp: Experiment) -> str:
    """``<exp_name>/<test_name>`` made safe for a git ref name (no ``..``, no leading dot, no ``.lock``)."""
    import re

    parts = []
    for p in (exp.exp_name, str(exp.test_name)):
        p = re.sub(r"\.{2,}", ".", p).lstrip(".")
        if p.endswith(".lock"):
            p = p[:-5] + "_lock"
        parts.append(p.rstrip(".") or "_")
    return "/".join(parts)


class LockFile(ExpHook):
    """Record the dependency lock: ``collect_lock()`` + ``write_lock(root, lock)`` -> ``run.json['lock']``."""

    def on_start(self, exp: Experiment) -> None:
        from lumo_hydra.record.lockfile import collect_lock, write_lock

        lock = collect_lock()
        exp.record["lock"] = write_lock(exp.root, lock)


def build_command(argv: list[str] | None = None, cwd: str | None = None, executable: str | None = None) -> str:
    """The shell-quoted command that reruns this process: ``cd <cwd> && <python> <script|-m mod> <args>``,
    with secret values masked as ``***`` (:mod:`lumo_hydra.record.secrets`)."""
    this_process = argv is None
    argv = list(sys.argv if argv is None else argv)
    cwd = os.getcwd() if cwd is None else cwd
    exe = sys.executable if executable is None else executable
    head: list[str] = [exe]
    spec = getattr(sys.modules.get("__main__"), "__spec__", None) if this_process else None
    if argv and argv[0] == "-c":
        head.append("-c")
        rest = argv[1:]
    elif argv and spec is not None and getattr(spec, "name", None):  # python -m <module>
        mod = spec.name
        if mod.endswith(".__main__"):
            mod = mod[: -len(".__main__")]
        head += ["-m", mod]
        rest = argv[1:]
    else:
        rest = argv
    return f"cd {shell_quote(cwd)} && " + " ".join(shell_quote(a) for a in [*head, *mask_argv(rest)])


class LastCmd(ExpHook):
    """Record the exact re-runnable command in ``execute.command``: ``command`` if given (captured in
    the launching process), else built from ``sys.executable``, ``sys.argv`` and the cwd. Writes
    nothing into the user's folder."""

    def __init__(self, command: str | None = None, enabled: bool = True) -> None:
        super().__init__(enabled)
        self.command = command

    def on_start(self, exp: Experiment) -> None:
        cmd = Masker().command(self.command) if self.command is not None else build_command()
        exp.record["execute"]["command"] = cmd


class RecordAbort(ExpHook):
    """Record exceptions, Ctrl-C, SIGTERM, ``sys.exit`` and exit without ``end()`` (see ``lumo_hydra.abort``)."""

    def on_start(self, exp: Experiment) -> None:
        from lumo_hydra.record import abort

        self.msg = abort.watch(exp)

    def on_end(self, exp: Experiment) -> None:
        from lumo_hydra.record import abort

        abort.unwatch(exp)


def format_metrics(metrics: dict[str, Any], limit: int = 8) -> str:
    """``Acc=0.93(max) loss=0.12(min)`` from a ``metrics.json`` mapping (best values)."""
    parts = []
    for k, m in list(metrics.items())[:limit]:
        if not isinstance(m, dict):
            continue
        v = m.get("best")
        vs = f"{v:.6g}" if isinstance(v, float) else str(v)
        parts.append(f"{k}={vs}" + (f"({m['cmp']})" if m.get("cmp") else ""))
    if len(metrics) > limit:
        parts.append(f"... {len(metrics) - limit} more")
    return " ".join(parts)


def format_returned(value: Any, limit: int = 8) -> str:
    """``final_acc=0.93 train_seconds=4.1`` for a returned dict, the value itself otherwise."""
    def one(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    if isinstance(value, dict):
        parts = [f"{k}={one(v)}" for k, v in list(value.items())[:limit]]
        return " ".join(parts + ([f"... {len(value) - limit} more"] if len(value) > limit else []))
    text = one(value)
    return text if len(text) <= 200 else text[:199] + "…"


class Diary(ExpHook):
    """At end, append one tab-separated line to ``<root>/diary/<YYYY-MM-DD>.log`` with a single O_APPEND
    write: ``time  exp_name  test_name  status  best-metrics  command``; only once ``run.json`` holds the
    end (a line cut short by a full disk is truncated back)."""

    after_record = True

    def on_end(self, exp: Experiment) -> None:
        from lumo_hydra.store.times import now_iso

        rec = exp.record
        cmd = (rec.get("execute") or {}).get("command") or " ".join(shell_quote(a) for a in mask_argv(sys.argv))
        fields = [now_iso(), exp.exp_name, str(exp.test_name), str(rec.get("status")),
                  format_metrics(exp.metrics) or "-", cmd]
        line = "\t".join(f.replace("\t", " ").replace("\n", " ") for f in fields) + "\n"
        path = StoreLayout(exp.root).diary_file(time.strftime("%Y-%m-%d"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0o666 & ~umask like every store file: umask 002 lets the group append to a shared store's diary
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.fstat(fd).st_size
            data = line.encode("utf-8")
            if os.write(fd, data) != len(data):  # a full disk: no partial line glued to the next run's
                os.ftruncate(fd, size)
                raise OSError(28, "short write to the diary (No space left on device?)")
        finally:
            os.close(fd)


def end_hooks(exp: Experiment, hooks: list[Any], call: Any, write_record: Any) -> None:
    """The end of a run (``Experiment.end``): every hook's ``on_end`` (reversed start order) with
    ``call(hook, "on_end")``, then ``write_record()`` (true when ``run.json`` was written), then the
    ``after_record`` hooks, skipped (and said so) when the end record is not on disk."""
    late = [h for h in reversed(hooks) if getattr(h, "after_record", False)]
    for hook in reversed(hooks):
        if hook not in late:
            call(hook, "on_end")
    written = write_record()
    if not late:
        return
    rec_hooks = exp.record["hooks"]
    before = dict(rec_hooks)
    for hook in late:
        if written or not getattr(hook, "enabled", True):
            call(hook, "on_end")
        else:
            rec_hooks[getattr(hook, "name", None) or type(hook).__name__] = {
                "loaded": False, "msg": "on_end skipped: run.json could not be written (see store_errors)"}
    if rec_hooks != before:
        write_record()  # a late hook's failure into run.json (no second write when all went well)


class FinalReport(ExpHook):
    """At end, log a short summary (id, status, duration, best metrics, info folder) to the ``lumo_hydra``
    logger at INFO. When no logging handler is configured at all (a plain script), the summary is
    written to stderr instead, unless ``fallback_stderr=False`` or ``LUMO_QUIET=1``."""

    def __init__(self, fallback_stderr: bool = True, enabled: bool = True) -> None:
        super().__init__(enabled)
        self.fallback_stderr = fallback_stderr

    @staticmethod
    def summary(exp: Experiment) -> str:
        rec = exp.record
        lines = [f"lumo-hydra run {exp.exp_name}/{exp.test_name}: {rec.get('status')} "
                 f"in {exp.duration:.2f} s"]
        if isinstance(rec.get("hydra"), dict):  # the default name is the script's: say how to choose one
            lines.append(f"  experiment: {exp.exp_name} (choose it with +hydra.callbacks.lumo.exp_name=NAME)")
        rv = rec.get("return_value")
        returned = set(rv) if isinstance(rv, dict) else {"return_value"} if rv is not None else set()
        m = format_metrics({k: v for k, v in exp.metrics.items() if k not in returned})
        if m:
            lines.append(f"  best: {m}")
        if rv is not None:
            lines.append(f"  returned: {format_returned(rv)}")
        exc = rec.get("exception")
        if isinstance(exc, dict) and exc.get("type"):
            lines.append(f"  exception: {exc.get('type')}: {exc.get('msg')}")
        lines.append(f"  info: {exp.info_dir}")
        return "\n".join(lines)

    def on_end(self, exp: Experiment) -> None:
        text = self.summary(exp)
        if logger.hasHandlers():
            logger.info(text)
        elif self.fallback_stderr and os.environ.get("LUMO_QUIET", "") in ("", "0"):
            print(text, file=sys.stderr, flush=True)


class HookSpec:
    """One row of :data:`HOOKS`: the switch name (``hydra.callbacks.lumo.<switch>``) and the hook class.
    A plain class: a ``NamedTuple`` costs every recorded process ~0.2 ms to create (issue 18)."""

    __slots__ = ("switch", "cls")

    def __init__(self, switch: str, cls: type[ExpHook] | type[ConsoleOutput]) -> None:
        self.switch = switch
        self.cls = cls

    def __iter__(self) -> Iterator[Any]:
        return iter((self.switch, self.cls))

    def __repr__(self) -> str:
        return f"HookSpec({self.switch!r}, {self.cls.__name__})"


#: The standard hooks, in the order they run at start (reversed at end). ``SimpleExperiment``'s
#: defaults, the callback's switches (``hydra.callbacks.lumo.git=false``...) and the hooks of a Hydra
#: job all derive from this one table: a new hook is one new row.
HOOKS: tuple[HookSpec, ...] = (
    HookSpec("output", ConsoleOutput),  # first: records the other hooks' output, the final report too
    HookSpec("git", GitCommit),
    HookSpec("lock", LockFile),
    HookSpec("last_cmd", LastCmd),
    HookSpec("record_abort", RecordAbort),
    HookSpec("diary", Diary),
    HookSpec("final_report", FinalReport),
)

#: the switch names, in :data:`HOOKS` order
HOOK_SWITCHES: tuple[str, ...] = tuple(h.switch for h in HOOKS)


def build_hooks(switches: Mapping[str, bool] | None = None,
                options: Mapping[str, Mapping[str, Any]] | None = None) -> list[ExpHook | ConsoleOutput]:
    """A fresh hook of every row of :data:`HOOKS`.

    ``switches[name]`` false builds that hook disabled (recorded as ``disabled``); missing switches are on.
    ``options[name]`` are keyword arguments for that hook's class (e.g. ``{"git": {"result": snap}}``).
    """
    switches = switches or {}
    options = options or {}
    return [spec.cls(**options.get(spec.switch, {}), enabled=bool(switches.get(spec.switch, True)))
            for spec in HOOKS]


def default_hooks() -> list[ExpHook | ConsoleOutput]:
    """A fresh list of every standard hook (what ``SimpleExperiment`` uses)."""
    return build_hooks()
