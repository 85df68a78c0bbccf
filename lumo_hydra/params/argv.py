"""The command-line parser of ``Params.from_args``: tokens to (files, operations), values by Hydra's grammar.

Accepted forms: ``--key=value``, ``--key value``, ``--flag`` (true), nested ``--a.b.c=1``, and
Hydra-style ``key=value``, ``+key=value`` (add), ``++key=value`` (set or add), ``~key`` (delete);
``--config a.yaml`` / ``-c a.yaml,b.json`` (and lumo's ``--c``) name files merged first, left to right; ``-h``/``--help`` asks for help.
Nothing here knows ``Params``: :func:`parse_argv` returns what was asked, ``Params`` applies it. The
value grammar is Hydra's (:mod:`lumo_hydra._hydra.overrides`, imported when a value is parsed).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from lumo_hydra.errors import ParamsArgsError

__all__ = ["ArgvOp", "ParsedArgv", "parse_argv", "parse_value", "check_key"]


def parse_value(raw: str, *, lenient: bool = False, token: str | None = None) -> Any:
    """Parse ``raw`` like the value of a Hydra override (numbers, booleans, null, lists, dicts, quotes).

    ``lenient`` (used for ``--key value``) falls back to the raw string when the grammar rejects it.
    ``token`` is the argument named in an error (default: ``raw``).
    """
    from lumo_hydra._hydra.overrides import parse_override_value

    token = token if token is not None else raw
    try:
        parsed = parse_override_value(raw)
    except RecursionError:
        raise ParamsArgsError(f"the value in {_short(token)!r} is nested too deeply") from None
    if parsed.error is not None:
        if lenient:
            return raw
        raise ParamsArgsError(f"cannot parse the value in {token!r}: {parsed.error}")
    if parsed.sweep:
        if lenient:
            return raw
        raise ParamsArgsError(
            f"{token!r} is a sweep; Params takes one value per key (write a list as [a,b], quote a string with commas)"
        )
    return parsed.value


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ArgvOp(NamedTuple):
    """One operation asked for on the command line."""

    #: ``set`` (the key must exist), ``add`` (it must not), ``force`` (either) or ``del``
    kind: Literal["set", "add", "force", "del"]
    key: str
    value: Any = None


@dataclass
class ParsedArgv:
    """The command line, parsed: files to merge first, then the operations in order."""

    files: list[str] = field(default_factory=list)
    ops: list[ArgvOp] = field(default_factory=list)
    #: ``-h``/``--help`` was given (parsing stopped there)
    help: bool = False


def check_key(key: str, tok: str) -> None:
    """Raise :class:`ParamsArgsError` for an empty key or an empty dotted part (``a..b``)."""
    if not key or any(not part for part in key.split(".")):
        raise ParamsArgsError(f"bad parameter name in {tok!r}")


def _config_files(value: str) -> list[str]:
    return [f for f in value.split(",") if f]


def parse_argv(args: Sequence[str], *, short_config: bool = False) -> ParsedArgv:
    """Parse command-line tokens (see the module docstring). Raises :class:`ParamsArgsError`.

    ``short_config`` also reads lumo's ``--c FILE`` / ``--c=FILE`` as ``--config`` (``Params.from_args``
    asks for it when there is no parameter named ``c``).
    """
    out = ParsedArgv()
    config_opts = ("-c", "--config", "--c") if short_config else ("-c", "--config")
    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        if tok in ("-h", "--help"):
            out.help = True
            return out
        if tok in config_opts:
            if i >= len(args):
                raise ParamsArgsError(f"{tok} needs a file name (e.g. {tok} params.yaml)")
            out.files += _config_files(args[i])
            i += 1
        elif tok.startswith(tuple(o + "=" for o in config_opts)):
            out.files += _config_files(tok.split("=", 1)[1])
        elif tok.startswith("--"):
            body = tok[2:]
            if "=" in body:
                key, raw = body.split("=", 1)
            elif i < len(args) and not args[i].startswith("--"):
                key, raw = body, args[i]
                i += 1
            else:
                key, raw = body, "true"
            check_key(key, tok)
            out.ops.append(ArgvOp("set", key, parse_value(raw, lenient=True, token=tok)))
        elif tok.startswith("~"):
            key = tok[1:].split("=", 1)[0]
            check_key(key, tok)
            out.ops.append(ArgvOp("del", key))
        elif "=" in tok:
            out.ops.append(_override(tok))
        else:
            raise ParamsArgsError(
                f"unrecognised argument {tok!r}: expected --key=value, --key value, key=value, +key=value or ~key"
            )
    return out


def _override(tok: str) -> ArgvOp:
    """``key=value``, ``+key=value`` or ``++key=value`` (the value by Hydra's grammar, strictly)."""
    key, raw = tok.split("=", 1)
    kind: Literal["set", "add", "force"] = "set"
    if key.startswith("++"):
        kind, key = "force", key[2:]
    elif key.startswith("+"):
        kind, key = "add", key[1:]
    check_key(key, tok)
    return ArgvOp(kind, key, parse_value(raw, token=tok))
