"""The ``lumo-hydra`` command line (also ``python -m lumo_hydra``): parse, run the command, map errors to exit codes.

Subcommands: list, show, logs, diff, note, tag, rerun, checkout, export, rm, gc. ``--root`` (default
``$LUMO_HOME``) chooses the store. Run ids may be abbreviated when unambiguous; an unknown id gets a
"did you mean" with the closest ids.

Exit codes: 0 success, 1 error, 2 usage.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from lumo_hydra.cli.parser import FILTER_KEYS, build_parser, parse
from lumo_hydra.errors import LumoValueError

__all__ = ["main", "COMMANDS", "command"]

#: where the function that runs each subcommand of :func:`~lumo_hydra.cli.parser.build_parser` lives
#: (``module:function``); it is imported only when that command runs, so ``lumo-hydra list`` does not pay
#: for the board, pack or git code
COMMANDS: dict[str, str] = {
    "list": "runs:cmd_list",
    "show": "runs:cmd_show",
    "logs": "logs:cmd_logs",
    "sweeps": "sweeps:cmd_sweeps",
    "diff": "code:cmd_diff",
    "note": "runs:cmd_note",
    "tag": "runs:cmd_tag",
    "rerun": "code:cmd_rerun",
    "checkout": "code:cmd_checkout",
    "export": "runs:cmd_export",
    "rm": "runs:cmd_rm_where",
    "gc": "maintenance:cmd_gc",
    "pack": "share:cmd_pack",
    "unpack": "share:cmd_unpack",
    "push": "share:cmd_push",
    "pull": "share:cmd_pull",
    "backup": "share:cmd_backup",
    "board": "board:cmd_board",
}


def command(name: str) -> Callable[[argparse.Namespace], int] | None:
    """The function that runs subcommand ``name`` (imported now), or None for an unknown name."""
    where = COMMANDS.get(name)
    if where is None:
        return None
    module, func = where.split(":")
    return getattr(importlib.import_module(f"lumo_hydra.cli.{module}"), func)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lumo-hydra`` with ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    code = _main(sys.argv[1:] if argv is None else list(argv))
    if argv is None:  # the program itself (the console script, python -m lumo_hydra), which exits next
        import gc

        # the interpreter's exit runs full collections over every object left (~6 ms of a command that
        # packed 1,000 runs): frozen, they are not walked (the end of the process reclaims them)
        gc.freeze()
    return code


def _main(argv: list[str]) -> int:
    """Parse ``argv``, run its command, map its errors to exit codes."""
    parser = build_parser(argv)  # only the subcommand argv names is built
    args = parse(parser, argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    func = command(args.command)
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
