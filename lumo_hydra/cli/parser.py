"""The ``lumo-hydra`` argument parser and its argument types.

The parser only parses: ``args.command`` names the subcommand, and :mod:`lumo_hydra.cli.app` runs the
command function that goes with it (so this module imports no command).
"""
from __future__ import annotations

import argparse
import typing

from lumo_hydra._version import __version__
from lumo_hydra.store.layout import DEFAULT_HOME, ENV_HOME, SNAPSHOT_REF_PREFIX
from lumo_hydra.store.status import STATUSES

__all__ = ["build_parser", "parse", "positive_int", "limit_int", "status", "stale_seconds", "FILTER_KEYS"]

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
        import re

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


def _add_run_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                      common: argparse.ArgumentParser) -> None:
    """list, show, diff, note, tag."""
    p = sub.add_parser("list", parents=[common], help="a table of runs",
                       description="A table of runs, newest first. On a terminal without --limit: the newest "
                       "runs that fit the screen (--limit 0 or --all: every run); piped, or with --json/--csv: "
                       "every run.")
    _add_filters(p)
    p.add_argument("--all", action="store_true", help="every run, also on a terminal (same as --limit 0)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON records instead of a table")
    fmt.add_argument("--csv", action="store_true", help="CSV instead of a table")

    p = sub.add_parser("show", parents=[common], help="everything about one run, or a sweep's table of jobs")
    p.add_argument("run", help="run id (test_name, exp/test_name, or an unambiguous prefix), or a sweep id")
    p.add_argument("--json", action="store_true", help="the record as JSON")

    p = sub.add_parser("sweeps", parents=[common], help="a table of sweeps", description="A table of sweeps, newest first.")
    p.add_argument("--exp", action="append", metavar="NAME", help="experiment name or glob (repeatable)")
    p.add_argument("--limit", type=positive_int, metavar="N", help="at most N sweeps")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")

    p = sub.add_parser("logs", parents=[common], help="a run's console output (output.log)")
    p.add_argument("run", help="run id (or an unambiguous prefix)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing the output while the run runs")
    p.add_argument("--interval", type=float, default=0.5, help=argparse.SUPPRESS)

    p = sub.add_parser("diff", parents=[common], help="params, metrics, packages and code of two runs")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("note", parents=[common], help="set a run's note")
    p.add_argument("run")
    p.add_argument("text", nargs="+")
    p.add_argument("--append", action="store_true", help="add a line instead of replacing the note")
    p.add_argument("--force", action="store_true", help="edit even while the run is running")

    p = sub.add_parser("tag", parents=[common], help="add (+a) or remove (-b) tags",
                       usage="lumo-hydra tag [--force] RUN +add -remove ...")
    p.add_argument("--force", action="store_true", help="edit even while the run is running")
    p.add_argument("run")
    p.add_argument("tags", nargs=argparse.REMAINDER, help="+name adds, -name removes")


def _add_code_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                       common: argparse.ArgumentParser) -> None:
    """rerun, checkout."""
    p = sub.add_parser("rerun", parents=[common], help="run a run's command again on its own code snapshot")
    p.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    p.add_argument("run")
    p.add_argument("overrides", nargs=argparse.REMAINDER, help="extra arguments/overrides appended")

    p = sub.add_parser("checkout", parents=[common], help="a git worktree of a run's code snapshot")
    p.add_argument("run")
    p.add_argument("dir")


def _add_store_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                        common: argparse.ArgumentParser) -> None:
    """export, rm, gc."""
    p = sub.add_parser("export", parents=[common], help="all (filtered) runs to csv, parquet or json")
    _add_filters(p)
    p.add_argument("--format", choices=("csv", "parquet", "json"), default="csv")
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout; required for parquet)")
    p.add_argument("--nested", action="store_true", help="lumo's nested columns instead of flat dotted ones")

    p = sub.add_parser("rm", parents=[common], help="remove runs (info, blob and cache folders)")
    p.add_argument("runs", nargs="*", metavar="RUN")
    p.add_argument("--where", metavar="EXPR", help="also remove the runs this condition selects (docs/cli.md)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--force", action="store_true", help="also remove runs that are still running")

    _add_share_commands(sub, common)

    p = sub.add_parser("gc", parents=[common], help="remove snapshot refs and folders no run needs any more")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    p.add_argument("--repo", action="append", metavar="DIR",
                   help=f"also look for {SNAPSHOT_REF_PREFIX}/ in this repository")


def _add_share_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                        common: argparse.ArgumentParser) -> None:
    """pack, unpack, push, pull, backup (docs/share.md)."""

    def js(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print what was done as JSON")

    def nocode(p: argparse.ArgumentParser) -> None:
        p.add_argument("--no-code", action="store_true", help="without the runs' code snapshots (git bundles)")

    p = sub.add_parser("pack", parents=[common], help="runs (or sweeps) with their code into one .tar.gz")
    p.add_argument("runs", nargs="+", metavar="RUN|SWEEP")
    p.add_argument("-o", "--output", required=True, metavar="FILE.tar.gz")
    p.add_argument("--blobs", action="store_true", help="also the runs' blob folders")
    p.add_argument("--max-blob-size", metavar="SIZE", help="leave out blob files over SIZE (500K, 20MB, 1GiB)")
    p.add_argument("--redact", action="store_true", help="mask $HOME, host and user names in the text records")
    nocode(p)
    js(p)
    p = sub.add_parser("unpack", parents=[common], help="a pack's runs into the store --root, its code into --repo")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--repo", metavar="DIR", help="the repository for the code snapshots (default: the runs' "
                   "own repository when it exists here, else <store>/code)")
    nocode(p)
    js(p)
    p = sub.add_parser("push", parents=[common], help="runs to <URL>/<exp>/<id>.tar.gz (file://, s3://, sftp://)")
    p.add_argument("runs", nargs="+", metavar="RUN|SWEEP")
    p.add_argument("url", metavar="URL")
    p.add_argument("--blobs", action="store_true", help="also the runs' blob folders")
    p.add_argument("--verify", action="store_true", help="list the destination even when the local ledger says "
                   "every run is there unchanged (a run deleted there is sent again)")
    nocode(p)
    js(p)
    p = sub.add_parser("pull", parents=[common], help="runs from a push URL into the store --root")
    p.add_argument("url", metavar="URL")
    p.add_argument("runs", nargs="*", metavar="RUN", help="only these runs (default: all)")
    p.add_argument("--repo", metavar="DIR", help="the repository for the code snapshots (see unpack)")
    nocode(p)
    js(p)
    p = sub.add_parser("backup", parents=[common], help="runs as GitHub issues (--github) or archives (--local)")
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
    js(p)


def _add_board_command(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                       common: argparse.ArgumentParser) -> None:
    """board (docs/board.md)."""
    p = sub.add_parser("board", parents=[common], help="browse, filter, compare and edit runs in a web page",
                       description="Serve the board (docs/board.md) until Ctrl-C. Needs the board extra: "
                                   "pip install 'lumo-hydra[board]'.")
    p.add_argument("--port", type=port_int, default=11606, metavar="PORT",
                   help="the port (default 11606; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1", metavar="HOST",
                   help="the address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--open", action="store_true", help="open the page in the web browser")
    p.add_argument("--read-only", action="store_true", help="no note/tag editing")
    p.add_argument("--export", metavar="FILE.html", help="write a self-contained static HTML page and exit")
    p.add_argument("--where", metavar="EXPR", help="only the runs this condition selects (docs/cli.md)")


def build_parser() -> argparse.ArgumentParser:
    """The ``lumo-hydra`` parser; ``args.command`` is the subcommand's name (``None`` without one)."""
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
    common = _common_options()
    _add_run_commands(sub, common)
    _add_code_commands(sub, common)
    _add_store_commands(sub, common)
    _add_board_command(sub, common)
    parser.subcommands = dict(sub.choices)  # type: ignore[attr-defined]
    return parser
