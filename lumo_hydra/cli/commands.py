"""The ``lumo-hydra`` command line (also ``python -m lumo_hydra``).

Subcommands: list, show, diff, note, tag, rerun, checkout, export, rm, gc. ``--root`` (default
``$LUMO_HOME``) chooses the store. Run ids may be abbreviated when unambiguous; an unknown id gets a
"did you mean" with the closest ids.

Exit codes: 0 success, 1 error, 2 usage.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from lumo_hydra._version import __version__
from lumo_hydra.errors import CLIError, LumoValueError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from rich.console import Console

    from lumo_hydra.watcher.watcher import Watcher

STATUS_STYLE = {"running": "cyan", "finished": "green", "failed": "red", "interrupted": "yellow",
                "killed": "magenta", "crashed": "bold red"}


# --------------------------------------------------------------------------------------------------
# helpers


def _console(stderr: bool = False) -> "Console":
    from rich.console import Console

    width = None
    if not (sys.stderr if stderr else sys.stdout).isatty():
        width = int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(stderr=stderr, width=width, highlight=False, soft_wrap=False)


def _watcher(args: argparse.Namespace) -> "Watcher":
    from lumo_hydra.watcher.watcher import Watcher

    return Watcher(root=getattr(args, "root", None), stale_after=getattr(args, "stale_after", 120.0))


def _progress_cb(console: "Console", label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A rich progress bar shown only for long work (many runs to read) on a terminal."""
    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if total < 500 or not console.is_terminal:
            return
        if "p" not in state:
            from rich.progress import Progress

            p = Progress(transient=True, console=console)
            p.start()
            state["p"] = p
            state["t"] = p.add_task(label, total=total)
        state["p"].update(state["t"], completed=done)

    def close() -> None:
        if "p" in state:
            state["p"].stop()

    return update, close


def _load(args: argparse.Namespace, flatten: bool = True) -> "pd.DataFrame":
    w = _watcher(args)
    err = _console(stderr=True)
    update, close = _progress_cb(err, "reading runs")
    try:
        return w.load(flatten=flatten, exp=args.exp, status=args.status, since=args.since, until=args.until,
                      sweep=args.sweep, tag=args.tag, progress=update)
    finally:
        close()


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v)
    if hasattr(v, "strftime"):
        try:
            return v.strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:  # NaT
            return ""
    return str(v)


def _fmt_duration(v: Any) -> str:
    try:
        s = float(v)
    except (TypeError, ValueError):
        return ""
    if math.isnan(s):
        return ""
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def _confirm(args: argparse.Namespace, question: str) -> bool:
    if getattr(args, "yes", False):
        return True
    if not sys.stdin.isatty():
        raise CLIError(f"{question} needs a confirmation: stdin is not a terminal, so pass --yes")
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _record(args: argparse.Namespace, run: str) -> dict[str, Any]:
    return _watcher(args).record(run)


def _git_of(rec: dict[str, Any], what: str, w: "Watcher | None" = None) -> tuple[str, str]:
    git = rec.get("git") or {}
    commit, repo = git.get("commit"), git.get("repo") or (rec.get("execute") or {}).get("repo")
    seen = set()
    while repo and not os.path.isdir(repo) and w is not None and rec.get("rerun_of") and rec["rerun_of"] not in seen:
        # a rerun ran in a temporary worktree, now removed: its snapshot lives in the original's repository
        seen.add(rec["rerun_of"])
        try:
            rec = w.record(rec["rerun_of"])
        except LumoValueError:
            break
        repo = (rec.get("git") or {}).get("repo") or repo
    if not commit or not repo:
        msg = git.get("msg") or "no snapshot was recorded"
        raise CLIError(f"run {rec.get('test_name')!r} has no code snapshot to {what}: {msg}")
    if not os.path.isdir(repo):
        raise CLIError(f"the repository {repo!r} of run {rec.get('test_name')!r} does not exist any more")
    return repo, commit


# --------------------------------------------------------------------------------------------------
# list / export

DEFAULT_COLUMNS = ["test_name", "exp_name", "status", "start", "duration", "sweep", "tags", "note"]


def _select(df: "pd.DataFrame", args: argparse.Namespace) -> "pd.DataFrame":
    import difflib

    sort = args.sort or "start"
    if sort not in df.columns:
        close = difflib.get_close_matches(sort, [str(c) for c in df.columns], n=3, cutoff=0.4)
        if len(df) == 0:
            return df
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CLIError(f"cannot sort by unknown column {sort!r}{hint}")
    desc = args.desc if args.sort else not args.asc
    if args.asc:
        desc = False
    df = df.sort_values(sort, ascending=not desc, na_position="last", kind="stable")
    if args.limit is not None:
        df = df.head(args.limit)
    return df


def _columns(df: "pd.DataFrame", args: argparse.Namespace) -> list[str]:
    import difflib

    if args.columns:
        cols = [c.strip() for c in args.columns.split(",") if c.strip()]
        for c in cols:
            if c not in df.columns and len(df):
                close = difflib.get_close_matches(c, [str(x) for x in df.columns], n=3, cutoff=0.4)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise CLIError(f"unknown column {c!r}{hint}")
        return [c for c in cols if c in df.columns]
    cols = [c for c in DEFAULT_COLUMNS if c in df.columns]
    cols += [c for c in df.columns if c.startswith("metrics.") and not c.endswith(".last")]
    if args.sort and args.sort in df.columns and args.sort not in cols:
        cols.append(args.sort)
    return cols


def _to_json_records(df: "pd.DataFrame") -> list[dict[str, Any]]:
    out = []
    cols = list(df.columns)
    for row in df.itertuples(index=False, name=None):
        d = {}
        for c, v in zip(cols, row):
            if hasattr(v, "isoformat"):
                try:
                    v = v.isoformat()
                except ValueError:
                    v = None
            elif isinstance(v, float) and math.isnan(v):
                v = None
            elif v is not None and type(v).__module__ == "numpy":
                v = v.item()
            d[c] = v
        out.append(d)
    return out


def _dump_json(obj: Any, fh: Any) -> None:
    json.dump(obj, fh, indent=1, ensure_ascii=False, default=str, allow_nan=False)
    fh.write("\n")


def _csv_ready(df: "pd.DataFrame") -> "pd.DataFrame":
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(lambda v: json.dumps(v, default=str) if isinstance(v, (list, dict)) else v)
    return df


def cmd_list(args: argparse.Namespace) -> int:
    df = _select(_load(args), args)
    cols = _columns(df, args)
    if args.json:
        _dump_json(_to_json_records(df[cols] if args.columns else df), sys.stdout)
        return 0
    if args.csv:
        _csv_ready(df[cols]).to_csv(sys.stdout, index=False)
        return 0
    from rich.table import Table

    console = _console()
    if not len(df):
        console.print(f"no runs in {_watcher(args).root}" + (" match the filters" if _filtered(args) else ""))
        return 0
    table = Table(show_lines=False, header_style="bold")
    for c in cols:
        short = c[len("metrics."):] if c.startswith("metrics.") else c
        table.add_column(short, no_wrap=c in ("test_name", "start", "status"), overflow="fold",
                         justify="right" if c.startswith(("metrics.", "duration")) else "left")
    for rec in df[cols].itertuples(index=False, name=None):
        cells = []
        for c, v in zip(cols, rec):
            if c == "status":
                cells.append(f"[{STATUS_STYLE.get(v, 'white')}]{v}[/]")
            elif c == "duration":
                cells.append(_fmt_duration(v))
            else:
                cells.append(_fmt(v))
        table.add_row(*cells)
    console.print(table)
    total = len(df)
    console.print(f"{total} run{'s' if total != 1 else ''}", style="dim")
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any(getattr(args, k, None) for k in ("exp", "status", "since", "until", "sweep", "tag"))


def cmd_export(args: argparse.Namespace) -> int:
    df = _select(_load(args, flatten=not args.nested), args)
    if args.columns:
        df = df[_columns(df, args)]
    fmt = args.format
    out = args.output
    if fmt == "parquet":
        if not out:
            raise CLIError("--format parquet writes a binary file: give it with -o FILE")
        try:
            _csv_ready(df).to_parquet(out, index=False)
        except ImportError as e:
            raise CLIError(f"--format parquet needs pyarrow or fastparquet: {e}") from None
    elif fmt == "csv":
        _csv_ready(df).to_csv(out or sys.stdout, index=False)
    else:
        if out:
            with open(out, "w", encoding="utf-8") as f:
                _dump_json(_to_json_records(df), f)
        else:
            _dump_json(_to_json_records(df), sys.stdout)
    if out:
        _console(stderr=True).print(f"exported {len(df)} runs to {out}")
    return 0


# --------------------------------------------------------------------------------------------------
# show / diff


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(_flat(v, key))
            else:
                out[key] = v
    return out


def cmd_show(args: argparse.Namespace) -> int:
    rec = _record(args, args.run)
    if args.json:
        _dump_json(rec, sys.stdout)
        return 0
    from rich.table import Table

    c = _console()
    st = str(rec.get("status"))
    c.print(f"[bold]{rec.get('exp_name')}/{rec.get('test_name')}[/]  [{STATUS_STYLE.get(st, 'white')}]{st}[/]"
            + (f" (recorded: {rec.get('recorded_status')})" if rec.get("recorded_status") != st else ""))
    prog = rec.get("progress") or {}
    pinfo = rec.get("pinfo") or {}
    c.print(f"start {prog.get('start') or '?'}   end {prog.get('end') or '-'}   "
            f"host {pinfo.get('host') or '?'}   pid {pinfo.get('pid') or '?'}")
    for key in ("sweep", "rerun_of", "note"):
        if rec.get(key):
            c.print(f"{key}: {rec[key]}")
    if rec.get("tags"):
        c.print("tags: " + ", ".join(rec["tags"]))
    params = _flat(rec.get("params") or {})
    if params:
        t = Table(title="params", title_justify="left", header_style="bold")
        t.add_column("key", no_wrap=True)
        t.add_column("value", overflow="fold")
        for k, v in params.items():
            t.add_row(k, json.dumps(v, default=str) if not isinstance(v, str) else v)
        c.print(t)
    metrics = rec.get("metrics") or {}
    if metrics:
        t = Table(title="metrics", title_justify="left", header_style="bold")
        for col in ("name", "best", "cmp", "best step", "last", "count"):
            t.add_column(col, justify="left" if col in ("name", "cmp") else "right")
        for name, m in metrics.items():
            m = m if isinstance(m, dict) else {}
            t.add_row(name, _fmt(m.get("best")), str(m.get("cmp") or ""), _fmt(m.get("best_step")),
                      _fmt(m.get("last")), _fmt(m.get("count")))
        c.print(t)
    ex = rec.get("execute") or {}
    if ex.get("command"):
        c.print("[bold]command[/]")
        c.print("  " + ex["command"], markup=False)
    git = rec.get("git") or {}
    c.print("[bold]code snapshot[/]")
    if git.get("commit"):
        c.print(f"  commit {git.get('commit')}  (base {git.get('base')}, branch {git.get('branch')}, "
                f"dirty {git.get('dirty')})", markup=False)
        c.print(f"  repo {git.get('repo')}  ref {git.get('ref')}", markup=False)
        if git.get("skipped"):
            c.print(f"  skipped: {', '.join(map(str, git['skipped']))}", markup=False)
    else:
        c.print(f"  none: {git.get('msg') or 'not recorded'}", markup=False)
    lock = rec.get("lock") or {}
    if lock:
        c.print(f"[bold]environment[/]  python {lock.get('python')}  {lock.get('packages')} packages  "
                f"lock {lock.get('file')}")
    exc = rec.get("exception")
    if exc:
        c.print(f"[bold red]exception[/] {exc.get('type')}: {exc.get('msg')}", markup=True)
        if exc.get("traceback"):
            c.print(str(exc["traceback"]).rstrip(), markup=False)
    paths = rec.get("paths") or {}
    c.print("[bold]files[/]")
    c.print(f"  info  {rec.get('info_dir')}", markup=False)
    for k in ("blob_dir", "cache_dir"):
        if paths.get(k):
            c.print(f"  {k[:-4]:5} {paths[k]}", markup=False)
    return 0


def _lock_packages(root: str, rec: dict[str, Any]) -> dict[str, str] | None:
    lock = rec.get("lock") or {}
    ref = lock.get("digest") or lock.get("file")
    if not ref:
        return None
    try:
        from lumo_hydra.record.lockfile import read_lock

        return dict((read_lock(root, ref) or {}).get("packages") or {})
    except (LumoValueError, OSError, ValueError):
        return None


def cmd_diff(args: argparse.Namespace) -> int:
    w = _watcher(args)
    a, b = w.record(args.run_a), w.record(args.run_b)
    na, nb = a.get("test_name"), b.get("test_name")
    data: dict[str, Any] = {"a": na, "b": nb}
    pa, pb = _flat(a.get("params") or {}), _flat(b.get("params") or {})
    data["params"] = {k: [pa.get(k), pb.get(k)] for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)}
    ma, mb = a.get("metrics") or {}, b.get("metrics") or {}
    data["metrics"] = {k: [(ma.get(k) or {}).get("best"), (mb.get(k) or {}).get("best")]
                       for k in sorted(set(ma) | set(mb))}
    la, lb = _lock_packages(w.root, a), _lock_packages(w.root, b)
    if la is not None and lb is not None:
        data["packages"] = {k: [la.get(k), lb.get(k)] for k in sorted(set(la) | set(lb)) if la.get(k) != lb.get(k)}
    else:
        data["packages"] = None
    ga, gb = a.get("git") or {}, b.get("git") or {}
    code = None
    code_msg = ""
    if ga.get("commit") and gb.get("commit"):
        if ga["commit"] == gb["commit"]:
            code = ""
        else:
            repo = str(ga.get("repo") or gb.get("repo") or "")
            try:
                from lumo_hydra.record.gitsnap import diff

                code = diff(repo, ga["commit"], gb["commit"])
            except (LumoValueError, OSError) as e:
                code_msg = f"code diff unavailable: {e}"
    else:
        code_msg = "code diff unavailable: " + ("run A" if not ga.get("commit") else "run B") + " has no snapshot"
    data["code"] = code
    if args.json:
        _dump_json(data, sys.stdout)
        return 0
    from rich.table import Table

    c = _console()
    c.print(f"[bold]A[/] {a.get('exp_name')}/{na}   [bold]B[/] {b.get('exp_name')}/{nb}")
    for title, rows in (("params", data["params"]), ("metrics (best)", data["metrics"]),
                        ("packages", data["packages"])):
        if rows is None:
            c.print(f"{title}: lock files unavailable")
            continue
        if not rows:
            c.print(f"{title}: identical")
            continue
        t = Table(title=title, title_justify="left", header_style="bold")
        t.add_column("key", no_wrap=True)
        t.add_column("A", overflow="fold")
        t.add_column("B", overflow="fold")
        for k, (x, y) in rows.items():
            t.add_row(k, _fmt(x) if x is not None else "-", _fmt(y) if y is not None else "-")
        c.print(t)
    if code is None:
        c.print(code_msg)
    elif code == "":
        c.print("code: identical snapshots")
    else:
        c.print("[bold]code[/]")
        c.print(code.rstrip(), markup=False, highlight=False)
    return 0


# --------------------------------------------------------------------------------------------------
# note / tag


def _edit_record(args: argparse.Namespace, run: str, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    from lumo_hydra.store.files import atomic_write_json, read_json

    w: Watcher = _watcher(args)
    ref = w.resolve(run)
    rec = w.record(ref.info_dir)
    if rec["status"] == "running" and not args.force:
        raise CLIError(
            f"run {ref.test_name!r} is still running and its process rewrites run.json (one writer per run): "
            f"editing it now could be lost or lose the run's own update; wait until it ends, or pass --force"
        )
    path = os.path.join(ref.info_dir, "run.json")
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise CLIError(f"the record {path} is not a JSON object")
    edit(raw)
    atomic_write_json(path, raw)
    return raw


def cmd_note(args: argparse.Namespace) -> int:
    text = " ".join(args.text)

    def edit(rec: dict[str, Any]) -> None:
        rec["note"] = (str(rec.get("note") or "") + "\n" + text).strip() if args.append else text

    rec = _edit_record(args, args.run, edit)
    _console().print(f"note of {rec.get('test_name')}: {rec['note']}", markup=False)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    add: list[str] = []
    remove: list[str] = []
    tags = list(args.tags)
    while tags:
        t = tags.pop(0)
        if t == "--force":
            args.force = True
            continue
        if t in ("--root", "--stale-after") and tags:
            setattr(args, t[2:].replace("-", "_"), tags.pop(0) if t == "--root" else _stale(tags.pop(0)))
            continue
        if t.startswith("-") and len(t) > 1:
            remove.append(t[1:])
        elif t.startswith("+") and len(t) > 1:
            add.append(t[1:])
        elif t and t not in ("+", "-"):
            add.append(t)
        else:
            raise CLIError(f"invalid tag {t!r}; allowed: +name to add, -name to remove")
    if not add and not remove:
        raise CLIError("no tags given; allowed: +name to add, -name to remove (e.g. tag RUN +best -draft)")

    def edit(rec: dict[str, Any]) -> None:
        tags = [str(x) for x in (rec.get("tags") or [])]
        tags = [x for x in tags if x not in remove]
        for x in add:
            if x not in tags:
                tags.append(x)
        rec["tags"] = tags

    rec = _edit_record(args, args.run, edit)
    _console().print(f"tags of {rec.get('test_name')}: {', '.join(rec['tags']) or '(none)'}", markup=False)
    return 0


# --------------------------------------------------------------------------------------------------
# rerun / checkout


def _within(path: str, root: str) -> str | None:
    try:
        rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    except ValueError:
        return None
    return None if rel == ".." or rel.startswith(".." + os.sep) else rel


def rerun_argv(rec: dict[str, Any], worktree: str, overrides: Sequence[str] = ()) -> tuple[list[str], str]:
    """The command (argv) and working folder that rerun run ``rec`` in ``worktree`` (its snapshot)."""
    ex = rec.get("execute") or {}
    git = rec.get("git") or {}
    repo = git.get("repo") or ex.get("repo")
    cwd = ex.get("cwd") or repo
    argv = list(ex.get("exec_argv") or [])
    exe = ex.get("exec_bin") or sys.executable
    if not argv:
        cmd = ex.get("command")
        if not cmd:
            raise CLIError(f"run {rec.get('test_name')!r} recorded no command to rerun")
        parts = shlex.split(cmd.split("&&", 1)[-1]) if "&&" in cmd else shlex.split(cmd)
        exe, argv = parts[0], parts[1:]
    rel_cwd = _within(cwd, repo) if (cwd and repo) else None
    new_cwd = os.path.join(worktree, rel_cwd) if rel_cwd is not None else worktree

    def remap(a: str) -> str:
        if repo and os.path.isabs(a):
            rel = _within(a, repo)
            if rel is not None:
                return os.path.join(worktree, rel)
        return a

    if argv and argv[0] != "-m":
        first = argv[0] if os.path.isabs(argv[0]) or not cwd else os.path.join(cwd, argv[0])
        argv[0] = remap(first) if _within(first, repo or "/") is not None and repo else argv[0]
    argv = [argv[0]] + [remap(a) for a in argv[1:]] if argv else argv
    return [exe, *argv, *overrides], new_cwd


def _remove_worktree(repo: str, path: str) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", path], cwd=repo, capture_output=True)
    if os.path.exists(path):
        shutil.rmtree(path, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True)


def cmd_rerun(args: argparse.Namespace) -> int:
    w = _watcher(args)
    rec = w.record(args.run)
    repo, commit = _git_of(rec, "rerun", w)
    from lumo_hydra.record.gitsnap import worktree

    tmp = tempfile.mkdtemp(prefix="lumo-rerun-")
    dest = os.path.join(tmp, "code")
    err = _console(stderr=True)
    try:
        worktree(repo, commit, dest)
        argv, cwd = rerun_argv(rec, dest, args.overrides)
        env = dict(os.environ)
        env["LUMO_RERUN_OF"] = str(rec.get("test_name"))
        env["LUMO_HOME"] = w.root  # the new run goes to the store the original run is in
        err.print(f"rerun of {rec.get('exp_name')}/{rec.get('test_name')} on snapshot {commit[:12]} "
                  f"in a temporary worktree", markup=False)
        err.print("  " + " ".join(shlex.quote(a) for a in argv), markup=False)
        if args.dry_run:
            return 0
        if not os.path.isdir(cwd):
            os.makedirs(cwd, exist_ok=True)
        proc = subprocess.run(argv, cwd=cwd, env=env)
        if proc.returncode != 0:
            err.print(f"the rerun exited with code {proc.returncode}")
            return 1
        return 0
    finally:
        _remove_worktree(repo, dest)
        shutil.rmtree(tmp, ignore_errors=True)


def cmd_checkout(args: argparse.Namespace) -> int:
    w = _watcher(args)
    rec = w.record(args.run)
    repo, commit = _git_of(rec, "check out", w)
    dest = os.path.abspath(args.dir)
    if os.path.exists(dest) and (not os.path.isdir(dest) or os.listdir(dest)):
        raise CLIError(f"cannot check out into {dest!r}: it exists and is not an empty folder")
    if os.path.isdir(dest):
        os.rmdir(dest)
    from lumo_hydra.record.gitsnap import worktree

    worktree(repo, commit, dest)
    _console().print(f"checked out the code of {rec.get('test_name')} (snapshot {commit[:12]}) into {dest}\n"
                     f"remove it with: git -C {shlex.quote(repo)} worktree remove {shlex.quote(dest)}", markup=False)
    return 0


# --------------------------------------------------------------------------------------------------
# rm / gc


def _known_repos_file(root: str) -> str:
    import hashlib

    from lumo_hydra.store.layout import cache_dir

    return os.path.join(str(cache_dir("watcher")), hashlib.sha256(root.encode()).hexdigest()[:16] + "-repos.json")


def _remember_repos(root: str, repos: Iterable[str]) -> None:
    """Repositories of removed runs, so that `gc` still finds their snapshot refs (reader-side cache)."""
    from lumo_hydra.store.files import atomic_write_json

    path = _known_repos_file(root)
    known = set(_known_repos(root)) | {r for r in repos if r}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write_json(path, sorted(known))


def _known_repos(root: str) -> list[str]:
    try:
        with open(_known_repos_file(root), "rb") as f:
            data = json.loads(f.read())
        return [str(x) for x in data] if isinstance(data, list) else []
    except (OSError, ValueError):
        return []


def _run_folders(root: str, exp: str, test: str) -> list[str]:
    return [os.path.join(root, sub, exp, test) for sub in ("experiments", "blob", "cache")]


def _sweep_markers(root: str, rec: dict[str, Any]) -> list[str]:
    sid = rec.get("sweep")
    if not sid:
        return []
    jobs = os.path.join(root, "sweeps", str(sid), "jobs")
    try:
        return [os.path.join(jobs, n) for n in os.listdir(jobs) if n.endswith("." + str(rec.get("test_name")))]
    except OSError:
        return []


def cmd_rm(args: argparse.Namespace) -> int:
    w = _watcher(args)
    refs = []
    for r in args.runs:
        ref = w.resolve(r)
        if ref not in refs:
            refs.append(ref)
    c = _console()
    targets: list[tuple[Any, dict[str, Any], list[str]]] = []
    for ref in refs:
        try:
            rec = w.record(ref.info_dir)
        except LumoValueError:
            rec = {"status": "unreadable", "test_name": ref.test_name}
        if rec.get("status") == "running" and not args.force:
            raise CLIError(f"run {ref.test_name!r} is still running; stop it first, or pass --force")
        paths = [p for p in _run_folders(w.root, ref.exp_name, ref.test_name) if os.path.exists(p)]
        paths += _sweep_markers(w.root, rec)
        targets.append((ref, rec, paths))
    c.print(f"will remove {len(targets)} run{'s' if len(targets) != 1 else ''}:")
    for ref, rec, paths in targets:
        c.print(f"  {ref.exp_name}/{ref.test_name} ({rec.get('status')})", markup=False)
        for p in paths:
            c.print(f"    {p}", markup=False)
    if not _confirm(args, f"remove {len(targets)} run(s)?"):
        c.print("nothing removed")
        return 1
    _remember_repos(w.root, [str((rec.get("git") or {}).get("repo") or "") for _, rec, _ in targets])
    for ref, rec, paths in targets:
        for p in paths:
            if os.path.isdir(p):
                shutil.rmtree(p)
            elif os.path.exists(p):
                os.unlink(p)
        c.print(f"removed {ref.exp_name}/{ref.test_name}", markup=False)
    c.print("snapshot refs of removed runs are dropped by `lumo-hydra gc`", style="dim")
    return 0


def _lumo_refs(repo: str) -> list[tuple[str, str]]:
    p = subprocess.run(["git", "for-each-ref", "--format=%(objectname) %(refname)", "refs/lumo/"], cwd=repo,
                       capture_output=True, text=True)
    if p.returncode != 0:
        return []
    out = []
    for line in p.stdout.splitlines():
        sha, _, name = line.partition(" ")
        if name:
            out.append((sha, name))
    return out


def cmd_gc(args: argparse.Namespace) -> int:
    w = _watcher(args)
    c = _console()
    df = w.load()
    # runs that still exist: the refs and commits they point to, and their folders
    keep_refs: set[str] = set()
    keep_commits: set[str] = set()
    repos: set[str] = set()
    live: set[tuple[str, str]] = set()
    for exp, test, git in zip(df["exp_name"], df["test_name"], df["git"]):
        live.add((str(exp), str(test)))
        if isinstance(git, dict):
            if git.get("ref"):
                keep_refs.add(git["ref"])
            if git.get("commit"):
                keep_commits.add(git["commit"])
            if git.get("repo"):
                repos.add(git["repo"])
    sweeps_dir = os.path.join(w.root, "sweeps")
    try:
        for sid in os.listdir(sweeps_dir):
            try:
                with open(os.path.join(sweeps_dir, sid, "sweep.json"), "rb") as f:
                    sw = json.loads(f.read())
            except (OSError, ValueError):
                continue
            g = sw.get("git") or {}
            if g.get("repo"):
                repos.add(g["repo"])
            # a sweep's snapshot is still needed while one of its jobs exists
            if any(str(s) == sid for s in df["sweep"] if s):
                if g.get("ref"):
                    keep_refs.add(g["ref"])
                if g.get("commit"):
                    keep_commits.add(g["commit"])
    except OSError:
        pass
    repos.update(_known_repos(w.root))
    for extra in args.repo or []:
        repos.add(os.path.abspath(extra))
    stale_refs: list[tuple[str, str]] = []
    for repo in sorted(repos):
        if not os.path.isdir(repo):
            continue
        for sha, name in _lumo_refs(repo):
            if name not in keep_refs and sha not in keep_commits:
                stale_refs.append((repo, name))
    orphans: list[str] = []
    for sub in ("blob", "cache"):
        base = os.path.join(w.root, sub)
        try:
            exps = os.listdir(base)
        except OSError:
            continue
        for exp in exps:
            try:
                tests = os.listdir(os.path.join(base, exp))
            except OSError:
                continue
            for test in tests:
                if not os.path.exists(os.path.join(w.root, "experiments", exp, test)):
                    orphans.append(os.path.join(base, exp, test))
    if not stale_refs and not orphans:
        c.print(f"nothing to collect ({len(df)} runs, {len(repos)} repositories checked)")
        return 0
    c.print(f"will remove {len(stale_refs)} snapshot ref(s) and {len(orphans)} orphan folder(s):")
    for repo, name in stale_refs:
        c.print(f"  ref {name}  ({repo})", markup=False)
    for p in orphans:
        c.print(f"  folder {p}", markup=False)
    if args.dry_run:
        c.print("dry run: nothing removed")
        return 0
    if not _confirm(args, "remove them?"):
        c.print("nothing removed")
        return 1
    for repo, name in stale_refs:
        subprocess.run(["git", "update-ref", "-d", name], cwd=repo, check=False, capture_output=True)
    for p in orphans:
        shutil.rmtree(p, ignore_errors=True)
    c.print(f"removed {len(stale_refs)} ref(s) and {len(orphans)} folder(s)")
    return 0


# --------------------------------------------------------------------------------------------------
# the parser


def _add_filters(p: argparse.ArgumentParser) -> None:
    from lumo_hydra.store.status import STATUSES

    g = p.add_argument_group("filters")
    g.add_argument("--exp", action="append", metavar="NAME", help="experiment name or glob (repeatable)")
    g.add_argument("--status", action="append", type=_status, metavar="{" + ",".join(STATUSES) + "}",
                   help="run status (repeatable)")
    g.add_argument("--since", metavar="WHEN", help="started at/after: ISO date/time, Unix time or age (2h, 3d)")
    g.add_argument("--until", metavar="WHEN", help="started at/before: ISO date/time, Unix time or age")
    g.add_argument("--sweep", action="append", metavar="ID", help="sweep id or prefix (repeatable)")
    g.add_argument("--tag", action="append", metavar="TAG", help="has this tag (repeatable: all of them)")
    s = p.add_argument_group("order")
    s.add_argument("--sort", metavar="COLUMN", help="sort by any column, e.g. metrics.Acc or params.lr "
                   "(default: start, newest first)")
    s.add_argument("--desc", action="store_true", help="sort descending")
    s.add_argument("--asc", action="store_true", help="sort ascending")
    s.add_argument("--limit", type=_positive_int, metavar="N", help="at most N runs")
    s.add_argument("--columns", metavar="A,B,...", help="the columns to show/export")


def _positive_int(v: str) -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {v!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _status(v: str) -> str:
    from lumo_hydra.store.status import STATUSES

    if v in STATUSES:
        return v
    import difflib

    close = difflib.get_close_matches(v, list(STATUSES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise argparse.ArgumentTypeError(f"invalid status: {v!r}{hint} allowed: {', '.join(STATUSES)}")


def _stale(v: str) -> float:
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seconds: {v!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return x


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=argparse.SUPPRESS, metavar="DIR",
                        help="the store root (default: $LUMO_HOME, else ~/.lumo-hydra)")
    common.add_argument("--stale-after", type=_stale, default=argparse.SUPPRESS, metavar="SECONDS",
                        help="a run without end record and heartbeat for this long is crashed (default 120)")

    parser = argparse.ArgumentParser(
        prog="lumo-hydra",
        description="Inspect and manage the experiments recorded by lumo-hydra (store: $LUMO_HOME, default ~/.lumo-hydra).",
    )
    parser.add_argument("--version", action="version", version=f"lumo-hydra {__version__}")
    parser.add_argument("--root", default=None, metavar="DIR", help="the store root (default: $LUMO_HOME)")
    parser.add_argument("--stale-after", type=_stale, default=120.0, metavar="SECONDS",
                        help="a run without end record and heartbeat for this long is crashed (default 120)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", parents=[common], help="a table of runs", description="A table of runs, newest first.")
    _add_filters(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON records instead of a table")
    fmt.add_argument("--csv", action="store_true", help="CSV instead of a table")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=[common], help="everything about one run")
    p.add_argument("run", help="run id (test_name, exp/test_name, or an unambiguous prefix)")
    p.add_argument("--json", action="store_true", help="the record as JSON")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("diff", parents=[common], help="params, metrics, packages and code of two runs")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_diff)

    p = sub.add_parser("note", parents=[common], help="set a run's note")
    p.add_argument("run")
    p.add_argument("text", nargs="+")
    p.add_argument("--append", action="store_true", help="add a line instead of replacing the note")
    p.add_argument("--force", action="store_true", help="edit even while the run is running")
    p.set_defaults(func=cmd_note)

    p = sub.add_parser("tag", parents=[common], help="add (+a) or remove (-b) tags",
                       usage="lumo-hydra tag [--force] RUN +add -remove ...")
    p.add_argument("--force", action="store_true", help="edit even while the run is running")
    p.add_argument("run")
    p.add_argument("tags", nargs=argparse.REMAINDER, help="+name adds, -name removes")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("rerun", parents=[common], help="run a run's command again on its own code snapshot")
    p.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    p.add_argument("run")
    p.add_argument("overrides", nargs=argparse.REMAINDER, help="extra arguments/overrides appended")
    p.set_defaults(func=cmd_rerun)

    p = sub.add_parser("checkout", parents=[common], help="a git worktree of a run's code snapshot")
    p.add_argument("run")
    p.add_argument("dir")
    p.set_defaults(func=cmd_checkout)

    p = sub.add_parser("export", parents=[common], help="all (filtered) runs to csv, parquet or json")
    _add_filters(p)
    p.add_argument("--format", choices=("csv", "parquet", "json"), default="csv")
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout; required for parquet)")
    p.add_argument("--nested", action="store_true", help="lumo's nested columns instead of flat dotted ones")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("rm", parents=[common], help="remove runs (info, blob and cache folders)")
    p.add_argument("runs", nargs="+", metavar="RUN")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--force", action="store_true", help="also remove runs that are still running")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("gc", parents=[common], help="remove snapshot refs and folders no run needs any more")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.add_argument("--repo", action="append", metavar="DIR", help="also look for refs/lumo/ in this repository")
    p.set_defaults(func=cmd_gc)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    func = getattr(args, "func", None)
    if func is None:  # pragma: no cover
        parser.print_help()
        return 2
    if not hasattr(args, "exp"):
        args.exp = args.status = args.since = args.until = args.sweep = args.tag = None
    try:
        return int(func(args) or 0)
    except LumoValueError as e:
        print(f"lumo-hydra {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lumo-hydra: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `lumo-hydra list | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
