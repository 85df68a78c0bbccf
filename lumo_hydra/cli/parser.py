"""The ``lumo-hydra`` argument parser and its argument types.

The parser only parses: ``args.command`` names the subcommand, and :mod:`lumo_hydra.cli.app` runs the
command function that goes with it (so this module imports no command).
"""
from __future__ import annotations

import argparse
import re
import typing

from lumo_hydra._version import __version__
from lumo_hydra.store.layout import DEFAULT_HOME, ENV_HOME, SNAPSHOT_REF_PREFIX

__all__ = ["build_parser", "parse", "command_of", "SUBCOMMANDS", "positive_int", "limit_int", "level_int", "status",
           "stale_seconds", "FILTER_KEYS"]

#: the ``args`` attributes the filter options set (``None`` for commands without filters)
FILTER_KEYS = ("exp", "status", "since", "until", "sweep", "tag")


# -- argument types --------------------------------------------------------------------------------
def _int_at_least(v: str, least: int, hint: str = "") -> int:
    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {v!r}") from None
    if n < least:
        raise argparse.ArgumentTypeError(f"must be >= {least}{hint}, got {n}")
    return n


def positive_int(v: str) -> int:
    """An integer >= 1 (``sweeps --limit``)."""
    return _int_at_least(v, 1)


def port_int(v: str) -> int:
    n = _int_at_least(v, 0, " (0: any free port)")
    if n > 65535:
        raise argparse.ArgumentTypeError(f"must be <= 65535, got {n}")
    return n


def limit_int(v: str) -> int:
    """An integer >= 0 (``list``/``export --limit``; 0: every run)."""
    return _int_at_least(v, 0, " (0: every run)")


def status(v: str) -> str:
    """One of the run statuses (``--status``), with a did-you-mean for a typo."""
    from lumo_hydra.store.status import STATUSES  # here: only the commands with filters need it

    if v in STATUSES:
        return v
    import difflib  # lazy, like every import only an error message needs

    close = difflib.get_close_matches(v, list(STATUSES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise argparse.ArgumentTypeError(f"invalid status: {v!r}{hint} allowed: {', '.join(STATUSES)}")


def stale_seconds(v: str) -> float:
    """Seconds > 0 (``--stale-after``)."""
    try:
        x = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seconds: {v!r}") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {v}")
    return x


# -- the parser ------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse with a did-you-mean for a mistyped subcommand, choice or flag (exit code 2)."""

    def error(self, message: str) -> typing.NoReturn:
        import difflib

        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2)) or [c.strip() for c in m.group(2).split(",")]
            close = difflib.get_close_matches(m.group(1), choices, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        m = re.match(r"unrecognized arguments: (\S+)", message)
        if m and m.group(1).startswith("-"):
            flags = [o for a in self._actions for o in a.option_strings]
            close = difflib.get_close_matches(m.group(1).split("=")[0], flags, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        super().error(message)


def parse(parser: argparse.ArgumentParser, argv: typing.Sequence[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, but a flag the subcommand does not know is reported with that
    subcommand's usage (not the top-level one)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = getattr(parser, "subcommands", {}).get(getattr(args, "command", None), parser)
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _add_filters(p: argparse.ArgumentParser) -> None:
    from lumo_hydra.store.status import STATUSES  # here: it imports socket and datetime (pack does not need them)

    g = p.add_argument_group("filters")
    g.add_argument("--exp", action="append", metavar="NAME", help="experiment name or glob (repeatable)")
    g.add_argument("--status", action="append", type=status, metavar="{" + ",".join(STATUSES) + "}",
                   help="run status (repeatable)")
    g.add_argument("--since", metavar="WHEN", help="started at/after: ISO date/time, Unix time or age (2h, 3d)")
    g.add_argument("--until", metavar="WHEN", help="started at/before: ISO date/time, Unix time or age")
    g.add_argument("--sweep", action="append", metavar="ID", help="sweep id or prefix (repeatable)")
    g.add_argument("--tag", action="append", metavar="TAG", help="has this tag (repeatable: all of them)")
    g.add_argument("--where", metavar="EXPR", help='a condition on any column, e.g. "params.lr >= 0.01 and '
                   'metrics.acc > 0.9" (grammar: docs/cli.md)')
    s = p.add_argument_group("order")
    s.add_argument("--sort", metavar="COLUMN", help="sort by any column, e.g. metrics.Acc (best first, by "
                   "its cmp) or params.lr (default: start, newest first)")
    s.add_argument("--desc", action="store_true", help="sort descending")
    s.add_argument("--asc", action="store_true", help="sort ascending")
    s.add_argument("--limit", type=limit_int, metavar="N", help="at most N runs; 0: all of them")
    s.add_argument("--columns", metavar="A,B,...", help="the columns to show/export")
    s.add_argument("--all-columns", action="store_true", help="every column (the table is not cut to the terminal)")


def _common_options() -> argparse.ArgumentParser:
    """``--root`` and ``--stale-after``, accepted after the subcommand too."""
    common = _Parser(add_help=False)
    common.add_argument("--root", default=argparse.SUPPRESS, metavar="DIR",
                        help=f"the store root (default: ${ENV_HOME}, else {DEFAULT_HOME})")
    common.add_argument("--stale-after", type=stale_seconds, default=argparse.SUPPRESS, metavar="SECONDS",
                        help="a run without end record and heartbeat for this long is crashed (default 120)")
    return common


Build = typing.Callable[[argparse.ArgumentParser], None]


def _p_list(p: argparse.ArgumentParser) -> None:
    _add_filters(p)
    p.add_argument("--all", action="store_true", help="every run, also on a terminal (same as --limit 0)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON records instead of a table")
    fmt.add_argument("--csv", action="store_true", help="CSV instead of a table")


def _p_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run id (test_name, exp/test_name, or an unambiguous prefix), or a sweep id")
    p.add_argument("--json", action="store_true", help="the record as JSON")


def _p_sweeps(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exp", action="append", metavar="NAME", help="experiment name or glob (repeatable)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="at most N sweeps")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")


def _p_logs(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run id (or an unambiguous prefix)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing the output while the run runs")
    p.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)


def _p_diff(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--json", action="store_true")


def _p_note(p: argparse.ArgumentParser) -> None:
    p.add_argument("run")
    p.add_argument("text", nargs="+")
    p.add_argument("--append", action="store_true", help="add a line instead of replacing the note")
    p.add_argument("--force", action="store_true", help="edit even while the run is running")


def _p_tag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true", help="edit even while the run is running")
    p.add_argument("run")
    p.add_argument("tags", nargs=argparse.REMAINDER, help="+name adds, -name removes")


def _p_rerun(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    p.add_argument("run")
    p.add_argument("overrides", nargs=argparse.REMAINDER, help="extra arguments/overrides appended")


def _p_checkout(p: argparse.ArgumentParser) -> None:
    p.add_argument("run")
    p.add_argument("dir")


def _p_export(p: argparse.ArgumentParser) -> None:
    _add_filters(p)
    p.add_argument("--format", choices=("csv", "parquet", "json"), default="csv")
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout; required for parquet)")
    p.add_argument("--nested", action="store_true", help="lumo's nested columns instead of flat dotted ones")


def _p_rm(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="*", metavar="RUN")
    p.add_argument("--where", metavar="EXPR", help="also remove the runs this condition selects (docs/cli.md)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--force", action="store_true", help="also remove runs that are still running")


def _p_gc(p: argparse.ArgumentParser) -> None:
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.add_argument("--repo", action="append", metavar="DIR",
                   help=f"also look for {SNAPSHOT_REF_PREFIX}/ in this repository")


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print what was done as JSON")


def _no_code(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-code", action="store_true", help="without the runs' code snapshots (git bundles)")


def level_int(v: str) -> int:
    """A gzip level, 1 (fastest) to 9 (smallest) (``pack --level``)."""
    try:
        n = int(v)
    except ValueError:
        n = 0
    if not 1 <= n <= 9:
        raise argparse.ArgumentTypeError(f"invalid gzip level: {v!r}; allowed: an integer from 1 (fastest) to 9 (smallest)")
    return n


def _p_pack(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN|SWEEP")
    p.add_argument("-o", "--output", required=True, metavar="FILE.tar.gz")
    p.add_argument("--blobs", action="store_true", help="also the runs' blob folders")
    p.add_argument("--max-blob-size", metavar="SIZE", help="leave out blob files over SIZE (500K, 20MB, 1GiB)")
    p.add_argument("--redact", action="store_true", help="mask $HOME, host and user names in the text records")
    p.add_argument("--level", type=level_int, default=None, metavar="1-9",
                   help="gzip level: 1 fastest, 9 smallest (default 3)")
    _no_code(p)
    _json(p)


def _p_unpack(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE")
    p.add_argument("--repo", metavar="DIR", help="the repository for the code snapshots (default: the runs' "
                   "own repository when it exists here, else <store>/code)")
    _no_code(p)
    _json(p)


def _p_push(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", metavar="RUN|SWEEP")
    p.add_argument("url", metavar="URL")
    p.add_argument("--blobs", action="store_true", help="also the runs' blob folders")
    p.add_argument("--verify", action="store_true", help="list the destination even when the local ledger says "
                   "every run is there unchanged (a run deleted there is sent again)")
    _no_code(p)
    _json(p)


def _p_pull(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", metavar="URL")
    p.add_argument("runs", nargs="*", metavar="RUN", help="only these runs (default: all)")
    p.add_argument("--repo", metavar="DIR", help="the repository for the code snapshots (see unpack)")
    _no_code(p)
    _json(p)


def _p_backup(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="*", metavar="RUN")
    _add_filters(p)
    p.add_argument("--github", metavar="OWNER/NAME", help="post each run as a closed issue of this repository "
                   "(token: $GH_TOKEN or $GITHUB_TOKEN; API: $LUMO_GITHUB_API)")
    p.add_argument("--labels", metavar="A,B", help="labels of the issues")
    p.add_argument("--no-update", action="store_true", help="a new issue even if the run was backed up there")
    p.add_argument("--api-url", metavar="URL", help="GitHub Enterprise: https://HOST/api/v3")
    p.add_argument("--local", metavar="DIR", help="write one .tar.gz per run into DIR")
    p.add_argument("--with-code", action="store_true", help="--local: with the code snapshot")
    p.add_argument("--with-blob", action="store_true", help="--local: with the blob folder")
    p.add_argument("--with-cache", action="store_true", help="--local: with the cache folder")
    _json(p)


def _p_board(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=port_int, default=11606, metavar="PORT",
                   help="the port (default 11606; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", metavar="HOST",
                   help="the address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.add_argument("--read-only", action="store_true", help="no note/tag editing")
    p.add_argument("--export", metavar="FILE.html", help="write a self-contained static HTML page and exit")
    p.add_argument("--where", metavar="EXPR", help="only the runs this condition selects (docs/cli.md)")


#: every subcommand, in the order of ``--help``: its ``add_parser`` keywords (its one-line ``help``...) and
#: the function that adds its arguments (called only for the subcommand being run: docs/cli.md, "Start-up")
SUBCOMMANDS: dict[str, tuple[dict[str, str], Build]] = {
    "list": ({"help": "a table of runs",
              "description": "A table of runs, newest first. On a terminal without --limit: the newest runs that fit "
                             "the screen (--limit 0 or --all: every run); piped, or with --json/--csv: every run."}, _p_list),
    "show": ({"help": "everything about one run, or a sweep's table of jobs"}, _p_show),
    "sweeps": ({"help": "a table of sweeps", "description": "A table of sweeps, newest first."}, _p_sweeps),
    "logs": ({"help": "a run's console output (output.log)"}, _p_logs),
    "diff": ({"help": "params, metrics, packages and code of two runs"}, _p_diff),
    "note": ({"help": "set a run's note"}, _p_note),
    "tag": ({"help": "add (+a) or remove (-b) tags", "usage": "lumo-hydra tag [--force] RUN +add -remove ..."}, _p_tag),
    "rerun": ({"help": "run a run's command again on its own code snapshot"}, _p_rerun),
    "checkout": ({"help": "a git worktree of a run's code snapshot"}, _p_checkout),
    "export": ({"help": "all (filtered) runs to csv, parquet or json"}, _p_export),
    "rm": ({"help": "remove runs (info, blob and cache folders)"}, _p_rm),
    "pack": ({"help": "runs (or sweeps) with their code into one .tar.gz"}, _p_pack),
    "unpack": ({"help": "a pack's runs into the store --root, its code into --repo"}, _p_unpack),
    "push": ({"help": "runs to <URL>/<exp>/<id>.tar.gz (file://, s3://, sftp://)"}, _p_push),
    "pull": ({"help": "runs from a push URL into the store --root"}, _p_pull),
    "backup": ({"help": "runs as GitHub issues (--github) or archives (--local)"}, _p_backup),
    "gc": ({"help": "remove snapshot refs and folders no run needs any more"}, _p_gc),
    "board": ({"help": "browse, filter, compare and edit runs in a web page",
               "description": "Serve the board (docs/board.md) until Ctrl-C. Needs the board extra: "
                              "pip install 'lumo-hydra[board]'."}, _p_board),
}

#: the top-level options that take a value (``command_of`` skips it)
_VALUED = ("--root", "--stale-after")
_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")  # argparse's negative-number pattern: a word, not an option


def command_of(argv: typing.Sequence[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is neither a top-level option nor an option's
    value, by argparse's rules (option prefixes, ``--opt=value``, ``-5`` and words with a space are
    words); ``None`` when there is none. The word may be no known command."""
    it = iter(argv)
    for a in it:
        if not a.startswith("-") or len(a) == 1 or a == "--":
            return a  # argparse 3.11 takes "--" as the command word too
        if "=" in a:
            continue
        if len(a) > 2 and any(v.startswith(a) for v in _VALUED):  # argparse takes unambiguous prefixes
            next(it, None)
        elif _NUMBER.match(a) or " " in a:
            return a
    return None


def build_parser(argv: typing.Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``lumo-hydra`` parser; ``args.command`` is the subcommand's name (``None`` without one).

    Without ``argv``: every subcommand in full. With ``argv`` (what is about to be parsed): only the
    subcommand it names, in full (building the 18 subcommands' arguments costs a command ~8 ms); when it
    names none, or no known one, every subcommand with its one-line help only (``--help``, and the
    did-you-mean of a mistyped command), and :func:`parse` builds the full one if one is chosen after all."""
    parser = _Parser(
        prog="lumo-hydra",
        description="Inspect and manage the experiments recorded by lumo-hydra "
                    f"(store: ${ENV_HOME}, default {DEFAULT_HOME}).",
    )
    parser.add_argument("--version", action="version", version=f"lumo-hydra {__version__}")
    parser.add_argument("--root", default=None, metavar="DIR", help=f"the store root (default: ${ENV_HOME})")
    parser.add_argument("--stale-after", type=stale_seconds, default=120.0, metavar="SECONDS",
                        help="a run without end record and heartbeat for this long is crashed (default 120)")
    sub = typing.cast("argparse._SubParsersAction[argparse.ArgumentParser]",
                      parser.add_subparsers(dest="command", metavar="COMMAND"))
    named = None if argv is None else command_of(argv)
    full = argv is None or named in SUBCOMMANDS
    common = _common_options() if full else None
    for name, (kw, build) in SUBCOMMANDS.items():
        if named in SUBCOMMANDS and name != named:
            continue
        if common is None:
            sub.add_parser(name, **kw)  # type: ignore[arg-type]
        else:
            build(sub.add_parser(name, parents=[common], **kw))  # type: ignore[arg-type]
    parser.subcommands = dict(sub.choices)  # type: ignore[attr-defined]
    parser.full = full  # type: ignore[attr-defined]
    return parser
