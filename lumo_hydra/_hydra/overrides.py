"""Hydra's override grammar, for the parts of lumo_hydra that parse values the way Hydra does.

``Params.from_args`` reads ``key=value`` with :func:`parse_override_value`; sweep validation expands
sweeps with :func:`overrides_parser`. Hydra is imported inside the functions: a caller that never
parses an override never loads Hydra's parser.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

__all__ = ["ParsedValue", "overrides_parser", "parse_override_value", "unquote"]


@functools.lru_cache(maxsize=1)
def overrides_parser() -> Any:
    """Hydra's ``OverridesParser`` (built once per process: building it costs more than a parse)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def unquote(value: Any) -> Any:
    """A parsed override value with Hydra's ``QuotedString`` replaced by its text (in lists and dicts too)."""
    from hydra.core.override_parser.types import QuotedString

    if isinstance(value, QuotedString):
        return value.text
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {k: unquote(v) for k, v in value.items()}
    return value


class ParsedValue(NamedTuple):
    """What :func:`parse_override_value` found: the value, or why there is none."""

    value: Any = None
    #: the first line of Hydra's message when the grammar rejects the text, else None
    error: str | None = None
    #: True when the text is a sweep (``1,2``, ``range(3)``...): several values, not one
    sweep: bool = False


def parse_override_value(raw: str) -> ParsedValue:
    """Parse ``raw`` as the value of the override ``x=<raw>`` (numbers, booleans, null, lists, dicts,
    quoted strings, interpolations), quotes removed."""
    from hydra.errors import HydraException

    try:
        ov = overrides_parser().parse_override("x=" + raw)
    except HydraException as e:
        return ParsedValue(error=str(e).strip().splitlines()[0])
    if ov.is_sweep_override():
        return ParsedValue(sweep=True)
    return ParsedValue(value=unquote(ov.value()))
