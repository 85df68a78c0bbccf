"""The results table of the template's runs, straight from the store (``lumo_hydra.Watcher``).

    python results.py                          # every run, then mean +- std per model x modality
    python results.py --since 1h               # runs started in the last hour (or a Unix time, an ISO date)
    python results.py --sweep 261202.004       # the jobs of one sweep (id or prefix)
    python results.py --by model               # another grouping

``f1`` / ``acc`` are the test weighted F1 / accuracy at the epoch of the best dev F1 (what ``train.py``
returns as ``test_f1`` / ``test_acc``). The store is ``$LUMO_HOME`` (or ``--root``). ``load_runs`` and
``summary`` are also used by ``analysis.py`` and by the tests.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd

EXP_NAME = "emotion_recognition"

#: tidy column -> where to find it in a flattened Watcher row (first present wins)
COLUMNS = {
    "model": ("params.model.name",),
    "modality": ("params.modality.name",),
    "seed": ("params.seed",),
    "epochs": ("params.epochs",),
    "window": ("params.context_window",),
    "lr": ("params.optim.lr",),
    "f1": ("return_value.test_f1", "metrics.test_f1"),
    "acc": ("return_value.test_acc", "metrics.test_acc"),
    "best_f1": ("metrics.f1",),
}


def _pick(df: pd.DataFrame, candidates: Sequence[str]) -> pd.Series:
    for c in candidates:
        if c in df.columns:
            return df[c]
    return pd.Series([None] * len(df), index=df.index, dtype=object)


def load_runs(root: str | None = None, exp: str = EXP_NAME, since: Any = None, sweep: str | None = None,
              status: Sequence[str] | None = None) -> pd.DataFrame:
    """One tidy row per run: ``test_name, model, modality, seed, epochs, window, lr, f1, acc, best_f1, status,
    duration, sweep, start, info_dir`` (oldest first)."""
    from lumo_hydra import Watcher

    flat = Watcher(root).load(flatten=True, exp=exp, since=since, sweep=sweep, status=status)
    out = pd.DataFrame(index=flat.index)
    out["test_name"] = flat.get("test_name")
    for name, cands in COLUMNS.items():
        out[name] = _pick(flat, cands)
    for name in ("status", "duration", "sweep", "start", "info_dir"):
        out[name] = flat.get(name)
    return out.reset_index(drop=True)


def summary(runs: pd.DataFrame, by: Sequence[str] = ("model", "modality")) -> pd.DataFrame:
    """Per group: runs, finished runs, test F1 and accuracy (mean and std over runs, i.e. seeds), mean duration."""
    by = list(by)
    cols = [*by, "runs", "finished", "f1_mean", "f1_std", "acc_mean", "acc_std", "duration_mean"]
    if runs.empty:
        return pd.DataFrame(columns=cols)
    runs = runs.assign(f1=pd.to_numeric(runs["f1"]), acc=pd.to_numeric(runs["acc"]))
    g = runs.groupby(by, dropna=False)
    table = pd.DataFrame({
        "runs": g.size(),
        "finished": g["status"].apply(lambda s: int((s == "finished").sum())),
        "f1_mean": g["f1"].mean(),
        "f1_std": g["f1"].std(),
        "acc_mean": g["acc"].mean(),
        "acc_std": g["acc"].std(),
        "duration_mean": g["duration"].mean(),
    })
    return table.sort_values("f1_mean", ascending=False).reset_index()[cols]


def format_table(df: pd.DataFrame) -> str:
    """A plain-text table (floats rounded), for terminals and docs."""
    if df.empty:
        return "(no runs)"
    return df.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-")


def since_arg(v: str | None) -> Any:
    """``--since`` as given: a Unix time becomes a float; an age (``2h``) or an ISO date stays a string."""
    try:
        return float(v) if v is not None else None
    except ValueError:
        return v


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=None, help="store root (default: $LUMO_HOME)")
    ap.add_argument("--exp", default=EXP_NAME, help=f"experiment name (default: {EXP_NAME})")
    ap.add_argument("--since", default=None, help="only runs started since: an age like 2h, a Unix time or an ISO date")
    ap.add_argument("--sweep", default=None, help="only the jobs of this sweep (id or prefix)")
    ap.add_argument("--by", nargs="+", default=["model", "modality"], help="columns to group by (default: model modality)")
    ap.add_argument("--no-runs", action="store_true", help="print only the summary")
    args = ap.parse_args(argv)
    runs = load_runs(args.root, exp=args.exp, since=since_arg(args.since), sweep=args.sweep)
    if runs.empty:
        print(f"no runs of experiment {args.exp!r} found", file=sys.stderr)
        return 1
    unknown = [c for c in args.by if c not in runs.columns]
    if unknown:
        print(f"--by: unknown column(s) {unknown}; allowed: {list(runs.columns)}", file=sys.stderr)
        return 2
    if not args.no_runs:
        print(f"runs ({len(runs)}):")
        print(format_table(runs[["test_name", "model", "modality", "seed", "status", "duration", "f1", "acc"]]))
        print()
    print(f"test weighted F1 and accuracy (at the best dev epoch) per {' x '.join(args.by)}, mean and std over runs:")
    print(format_table(summary(runs, args.by)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
