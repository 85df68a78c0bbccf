"""Reading a parameter file (JSON or YAML) into a mapping; errors name the path and the line."""
from __future__ import annotations

import json
import os
from typing import Any

from lumo_hydra.errors import ParamsFileError, ParamsFileNotFoundError
from lumo_hydra.params.nested import MAX_DEPTH, depth_of

__all__ = ["read_file"]


def read_file(path: str | os.PathLike[str], fmt: str | None = None) -> dict[str, Any]:
    """Read a JSON (``fmt='json'`` or a ``.json`` name) or YAML file holding a mapping.

    Raises :class:`ParamsFileError` for a missing, unreadable or malformed file, or one whose top level
    is not a mapping, or one nested deeper than ``MAX_DEPTH``. A missing file raises
    :class:`ParamsFileNotFoundError`, which is also a ``FileNotFoundError``. An empty file is an empty mapping.
    """
    p = os.fspath(path)
    if fmt is None:
        fmt = "json" if p.lower().endswith(".json") else "yaml"
    try:
        with open(p, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ParamsFileNotFoundError(f"parameter file not found: {p!r}", p) from None
    except OSError as e:
        raise ParamsFileError(f"cannot read parameter file {p!r}: {e.strerror or e}") from None
    data = _parse_json(p, text) if fmt == "json" else _parse_yaml(p, text)
    if depth_of(data) > MAX_DEPTH:
        raise ParamsFileError(f"parameter file {p!r} is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(data, dict):
        raise ParamsFileError(
            f"parameter file {p!r} must contain a mapping at the top level; got {type(data).__name__}")
    return data


def _parse_json(p: str, text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as e:
        raise ParamsFileError(f"malformed JSON in {p!r} at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise ParamsFileError(f"parameter file {p!r} is nested more than {MAX_DEPTH} levels deep") from None


def _parse_yaml(p: str, text: str) -> Any:
    import yaml  # type: ignore[import-untyped, unused-ignore]

    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ParamsFileError(f"malformed YAML in {p!r}{where}: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise ParamsFileError(f"malformed YAML in {p!r}: {e}") from None
    except RecursionError:
        raise ParamsFileError(f"parameter file {p!r} is nested more than {MAX_DEPTH} levels deep") from None
    return {} if data is None else data
