"""The columns of the tables of runs: the metrics' cmp (from the runs' metrics.json), the params that
differ among the runs, the main metrics."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["metric_cmps", "differing", "main_metrics"]

#: how many runs' metrics.json ``list`` reads at most to learn the metrics' cmp
_CMP_READS = 50


def metric_cmps(df: pd.DataFrame) -> dict[str, str | None]:
    """``{column: 'max'|'min'|None}`` for each ``metrics.<name>`` column of ``df``, from the metrics.json
    of the first runs that have the metric (at most ``_CMP_READS`` files are read)."""
    from lumo_hydra.store.reader import read_metrics

    names = {c[len("metrics."):]: c for c in df.columns if c.startswith("metrics.") and not c.endswith(".last")}
    out: dict[str, str | None] = dict.fromkeys(names.values())
    todo = set(names)
    if "info_dir" not in df.columns:
        return out
    reads = 0
    for i in range(len(df)):
        if not todo or reads >= _CMP_READS:
            break
        has = [n for n in todo if df[names[n]].iloc[i] == df[names[n]].iloc[i]]  # not NaN
        if not has:
            continue
        reads += 1
        m = read_metrics(str(df["info_dir"].iloc[i]), warn=False)
        for n in has:
            if isinstance(m.get(n), dict):
                cmp = m[n].get("cmp")
                out[names[n]] = cmp if cmp in ("max", "min") else None
                todo.discard(n)
    return out


def differing(df: pd.DataFrame, prefix: str = "params.") -> list[str]:
    """The ``prefix`` columns whose values are not the same in every row of ``df``."""
    out = []
    for c in df.columns:
        if c.startswith(prefix):
            vals = {repr(v) if v == v else "nan" for v in df[c].tolist()}
            if len(vals) > 1:
                out.append(c)
    return out


def main_metrics(df: pd.DataFrame) -> list[str]:
    """The metrics columns of best values: those with a cmp (max/min), else all of them."""
    cmps = metric_cmps(df)
    with_cmp = [c for c, v in cmps.items() if v]
    return with_cmp or list(cmps)
