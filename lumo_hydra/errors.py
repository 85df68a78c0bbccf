"""Every exception lumo-hydra raises, in one place.

``LumoError`` is the root. Errors caused by a user's value or input also subclass ``ValueError`` (through
``LumoValueError``) and name the key, the value and what is allowed; store and git errors say what to
do. Every error pickles with its whole message (a Hydra job's error travels back to the launcher).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "LumoError", "LumoValueError", "ParamsValueError", "ParamsValidationError", "ParamsFileError",
    "ParamsArgsError", "UnknownKeyError", "StoreError", "RunNotFoundError", "ForkedWriterError",
    "ExperimentStateError", "GitError", "LockNotFoundError", "CLIError", "DataValueError", "DataTypeError",
    "DataIndexError", "DatasetSpecError", "StoreWarning", "BoundCheckError", "ParamsFileNotFoundError", "ArchiveError",
]


def _short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters (a 10**5000 int cannot even be turned into a string)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int too large for str(), a value nested too deep
        return f"<int of {value.bit_length()} bits>" if isinstance(value, int) else f"<a deeply nested {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class LumoError(Exception):
    """The root of every lumo-hydra exception."""


class LumoValueError(LumoError, ValueError):
    """Base class of every lumo-hydra error caused by a bad value or bad input."""


# -- parameters --------------------------------------------------------------------------------
class ParamsValueError(LumoValueError):
    """A parameter got a value its validator does not allow.

    ``key`` is the dotted parameter path, ``value`` the rejected value, ``allowed`` a human-readable
    description of what is allowed (e.g. ``one of ['cifar10', 'cifar100']`` or ``[0, 10]``), ``hint``
    an optional note (e.g. which sweep selection caused it).
    """

    def __init__(self, key: str, value: Any, allowed: str, hint: str = "") -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        self.hint = hint
        msg = f"invalid value for parameter '{key}': {_short_repr(value)}; allowed: {allowed}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)

    def __reduce__(self) -> Any:  # picklable across processes, with the whole message
        return (type(self), (self.key, self.value, self.allowed, self.hint))


class ParamsValidationError(ParamsValueError):
    """Several parameters have invalid values; ``errors`` lists each :class:`ParamsValueError`.

    ``key``/``value``/``allowed`` are those of the first error.
    """

    def __init__(self, errors: Sequence[ParamsValueError]) -> None:
        errs = list(errors)
        if not errs:
            raise ValueError("ParamsValidationError needs at least one error")
        first = errs[0]
        super().__init__(first.key, first.value, first.allowed, first.hint)
        self.errors = errs
        if len(errs) > 1:
            lines = [f"{len(errs)} invalid parameter values:"] + [f"  - {e}" for e in errs]
            self.args = ("\n".join(lines),)
        else:
            self.args = first.args

    def __reduce__(self) -> Any:
        return (type(self), (self.errors,))


class ParamsFileError(LumoValueError):
    """A parameter file is missing, unreadable or malformed (the message names the path and the line)."""


class ParamsFileNotFoundError(ParamsFileError, FileNotFoundError):
    """A parameter file that does not exist: also a ``FileNotFoundError`` (``filename`` is the path)."""

    def __init__(self, message: str, filename: str | None = None) -> None:
        super().__init__(message)
        self.filename = filename
        self.errno = 2  # ENOENT

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.filename))


#: lumo's name for a value its validator refuses (``except BoundCheckError`` works on lumo code)
BoundCheckError = ParamsValueError


class ParamsArgsError(LumoValueError):
    """A command-line argument that ``Params.from_args`` cannot understand."""


class UnknownKeyError(LumoValueError, KeyError):
    """A key that does not exist was set (with a 'did you mean' suggestion)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


# -- the store and the record ------------------------------------------------------------------
class StoreError(LumoValueError):
    """The store cannot be used (e.g. the root cannot be written); the message says what to do."""


class RunNotFoundError(LumoValueError, LookupError):
    """A run id that is not in the store (the message lists the closest ids)."""


class ForkedWriterError(LumoValueError, RuntimeError):
    """A forked child process tried to write the run of its parent (one writer per run folder)."""


class ExperimentStateError(LumoValueError, RuntimeError):
    """A method was called at the wrong time (e.g. ``mk_ipath`` before ``start()``, a write on a loaded run)."""


class GitError(LumoValueError):
    """A git operation asked for by the user failed (unknown commit, destination exists, no git)."""


class LockNotFoundError(LumoValueError, LookupError):
    """No lock file with that digest in the store."""


# -- the command line --------------------------------------------------------------------------
class CLIError(LumoValueError):
    """An error reported by the command line (exit code 1)."""


# -- datasets ----------------------------------------------------------------------------------
class DataValueError(LumoValueError):
    """A bad value given to a ``DatasetBuilder`` (duplicate names, unknown inputs, lengths, ...)."""


class DataTypeError(LumoValueError, TypeError):
    """A value of the wrong kind (a source that cannot be indexed, a transform that is not callable, ...)."""


class DataIndexError(LumoValueError, IndexError):
    """An index out of range of the builder or of the view it indexes."""


class DatasetSpecError(DataValueError):
    """A dataset spec is invalid: unknown key or reference, cycle, or a node that failed to build."""


# -- packs (share/) ----------------------------------------------------------------------------
class ArchiveError(LumoValueError):
    """A pack (``lumo-hydra unpack``) is refused: ``member`` names the archive member, ``problem`` why."""

    def __init__(self, archive: str, member: str, problem: str) -> None:
        self.archive, self.member, self.problem = archive, member, problem
        super().__init__(f"{archive}: member {member!r}: {problem}; nothing was written")

    def __reduce__(self) -> Any:
        return (type(self), (self.archive, self.member, self.problem))


# -- warnings ----------------------------------------------------------------------------------
class StoreWarning(UserWarning):
    """A file of the store was damaged or unreadable and was skipped (the message names the file)."""
