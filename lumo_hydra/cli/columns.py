"""The columns of the tables of runs: the metrics' cmp (from the runs' metrics.json), the params that
differ among the runs, the main metrics."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["metric_cmps", "differing", "main_metrics"]

#: how many runs' metrics.json ``list`` reads at most to learn the metrics' cmp
_CMP_READS = 50


def metric_cmps(df: pd.DataFrame) -> dict[str, str | None]:
    """``{column: 'max'|'min'|None}`` for each ``metrics.<name>`` column of ``df``, from the metrics.json
    of the first run that has each metric (at most ``_CMP_READS`` files are read)."""
    from lumo_hydra.store.reader import read_metrics

    names = {c[len("metrics."):]: c for c in df.columns if c.startswith("metrics.") and not c.endswith(".last")}
    out: dict[str, str | None] = dict.fromkeys(names.values())
    if "info_dir" not in df.columns:
        return out
    read: dict[str, dict[str, Any]] = {}
    for n, c in names.items():
        if len(read) >= _CMP_READS:
            break
        d = _first_dir(df, c)  # the first run that has the metric: one file per metric at most
        if d is None:
            continue
        if d not in read:
            read[d] = read_metrics(d, warn=False)
        m = read[d].get(n)
        cmp = m.get("cmp") if isinstance(m, dict) else None
        out[c] = cmp if cmp in ("max", "min") else None
    return out


def _first_dir(df: Any, c: str) -> str | None:
    """The info_dir of the first row of ``df`` (a DataFrame or :class:`~lumo_hydra.cli.stream.Rows`)
    with a value in column ``c``."""
    if hasattr(df, "at"):
        first = df[c].first_valid_index()
        return None if first is None else str(df.at[first, "info_dir"])
    for v, d in zip(df[c], df["info_dir"]):
        if v is not None and v == v:
            return str(d)
    return None


def differing(df: pd.DataFrame, prefix: str = "params.") -> list[str]:
    """The ``prefix`` columns whose values are not the same in every row of ``df``."""
    out = []
    for c in df.columns:
        if c.startswith(prefix):
            col = df[c]
            first = None
            for v in col.tolist() if hasattr(col, "tolist") else col:  # stops at the first other value
                r = repr(v) if v == v else "nan"
                if first is None:
                    first = r
                elif r != first:
                    out.append(c)
                    break
    return out


def main_metrics(df: pd.DataFrame) -> list[str]:
    """The metrics columns of best values: those with a cmp (max/min), else all of them."""
    cmps = metric_cmps(df)
    with_cmp = [c for c, v in cmps.items() if v]
    return with_cmp or list(cmps)
