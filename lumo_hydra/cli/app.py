"""The ``lumo-hydra`` command line (also ``python -m lumo_hydra``): parse, run the command, map errors to exit codes.

Subcommands: list, show, logs, diff, note, tag, rerun, checkout, export, rm, gc. ``--root`` (default
``$LUMO_HOME``) chooses the store. Run ids may be abbreviated when unambiguous; an unknown id gets a
"did you mean" with the closest ids.

Exit codes: 0 success, 1 error, 2 usage.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from lumo_hydra.cli.board import cmd_board
from lumo_hydra.cli.code import cmd_checkout, cmd_diff, cmd_rerun
from lumo_hydra.cli.logs import cmd_logs
from lumo_hydra.cli.maintenance import cmd_gc
from lumo_hydra.cli.parser import FILTER_KEYS, build_parser, parse
from lumo_hydra.cli.runs import cmd_export, cmd_list, cmd_note, cmd_rm_where, cmd_show, cmd_tag
from lumo_hydra.cli.share import cmd_backup, cmd_pack, cmd_pull, cmd_push, cmd_unpack
from lumo_hydra.cli.sweeps import cmd_sweeps
from lumo_hydra.errors import LumoValueError

__all__ = ["main", "COMMANDS"]

#: the function that runs each subcommand of :func:`~lumo_hydra.cli.parser.build_parser`
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "list": cmd_list,
    "show": cmd_show,
    "logs": cmd_logs,
    "sweeps": cmd_sweeps,
    "diff": cmd_diff,
    "note": cmd_note,
    "tag": cmd_tag,
    "rerun": cmd_rerun,
    "checkout": cmd_checkout,
    "export": cmd_export,
    "rm": cmd_rm_where,
    "gc": cmd_gc,
    "pack": cmd_pack,
    "unpack": cmd_unpack,
    "push": cmd_push,
    "pull": cmd_pull,
    "backup": cmd_backup,
    "board": cmd_board,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lumo-hydra`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = build_parser()
    args = parse(parser, argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    func = COMMANDS.get(args.command)
    if func is None:  # pragma: no cover
        parser.print_help()
        return 2
    for k in FILTER_KEYS:
        if not hasattr(args, k):
            setattr(args, k, None)
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
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (stays open: it is stdout now)
        except OSError:
            pass
        return 0
    except OSError as e:  # LUMO_HOME is a file, a read-only store...: one line, not a traceback
        print(f"lumo-hydra {args.command}: error: {store_problem(e, args)}", file=sys.stderr)
        return 1


def store_problem(e: OSError, args: argparse.Namespace) -> str:
    """What went wrong with which path, and what to do about it."""
    from lumo_hydra.store.layout import ENV_HOME, lumo_home

    root = getattr(args, "root", None) or str(lumo_home())
    path = e.filename or root
    problem = e.strerror or type(e).__name__
    if isinstance(e, NotADirectoryError) or os.path.isfile(root):
        todo = f"point ${ENV_HOME} or --root at a folder (the store root {root!r} must be a folder)"
    elif isinstance(e, PermissionError):
        todo = f"this needs write access: fix the permissions of the store {root!r} or use another --root"
    else:
        todo = f"check the store {root!r} (${ENV_HOME} or --root)"
    return f"{path}: {problem}; {todo}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
