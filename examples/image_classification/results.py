"""The results table of the template's runs, straight from the store (``lumo_hydra.Watcher``).

    python results.py                         # every run of the experiment, then a summary per method
    python results.py --since 1h              # runs started in the last hour (or a Unix time, an ISO date)
    python results.py --sweep 261128.004      # the jobs of one sweep (id or prefix)
    python results.py --by method model labelled_fraction

The store is ``$LUMO_HOME`` (or ``--root``). ``load_runs`` and ``summary`` are also used by
``analysis.py`` and the notebook.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd

EXP_NAME = "image_classification"

#: tidy column -> where to find it in a flattened Watcher row (first present wins)
COLUMNS = {
    "method": ("params.method.name",),
    "model": ("params.model._target_",),
    "labelled_fraction": ("params.labelled_fraction",),
    "seed": ("params.seed",),
    "epochs": ("params.epochs",),
    "lr": ("params.optim.lr",),
}


def _pick(df: pd.DataFrame, candidates: Sequence[str]) -> pd.Series:
    for c in candidates:
        if c in df.columns:
            return df[c]
    return pd.Series([None] * len(df), index=df.index, dtype=object)


def load_runs(
    root: str | None = None,
    exp: str = EXP_NAME,
    since: Any = None,
    sweep: str | None = None,
    status: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One tidy row per run: ``test_name, method, model, labelled_fraction, seed, epochs, lr, status,
    duration, best_acc, last_acc, best_acc_epoch, sweep, start, info_dir`` (oldest first)."""
    from lumo_hydra import Watcher

    w = Watcher(root)
    flat = w.load(flatten=True, exp=exp, since=since, sweep=sweep, status=status)
    out = pd.DataFrame(index=flat.index)
    out["test_name"] = flat.get("test_name")
    for name, cands in COLUMNS.items():
        out[name] = _pick(flat, cands)
    out["model"] = out["model"].map(lambda t: t.rsplit(".", 1)[-1].lower() if isinstance(t, str) else t)
    out["status"] = flat.get("status")
    out["duration"] = flat.get("duration")
    out["best_acc"] = _pick(flat, ["metrics.acc"])
    out["last_acc"] = _pick(flat, ["metrics.acc.last"])
    out["sweep"] = flat.get("sweep")
    out["start"] = flat.get("start")
    out["info_dir"] = flat.get("info_dir")
    return out.reset_index(drop=True)


def summary(runs: pd.DataFrame, by: Sequence[str] = ("method",)) -> pd.DataFrame:
    """Per group: number of runs, finished runs, best accuracy (mean, std, max over runs), mean duration."""
    by = list(by)
    if runs.empty:
        return pd.DataFrame(columns=[*by, "runs", "finished", "best_acc_mean", "best_acc_std", "best_acc_max", "duration_mean"])
    g = runs.groupby(by, dropna=False)
    table = pd.DataFrame({
        "runs": g.size(),
        "finished": g["status"].apply(lambda s: int((s == "finished").sum())),
        "best_acc_mean": g["best_acc"].mean(),
        "best_acc_std": g["best_acc"].std(),
        "best_acc_max": g["best_acc"].max(),
        "duration_mean": g["duration"].mean(),
    })
    return table.sort_values("best_acc_mean", ascending=False).reset_index()


def format_table(df: pd.DataFrame) -> str:
    """A plain-text table (floats rounded), for terminals and docs."""
    if df.empty:
        return "(no runs)"
    return df.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=None, help="store root (default: $LUMO_HOME)")
    ap.add_argument("--exp", default=EXP_NAME, help=f"experiment name (default: {EXP_NAME})")
    ap.add_argument("--since", default=None, help="only runs started since: an age like 2h, a Unix time or an ISO date")
    ap.add_argument("--sweep", default=None, help="only the jobs of this sweep (id or prefix)")
    ap.add_argument("--by", nargs="+", default=["method"], help="columns to group the summary by (default: method)")
    ap.add_argument("--no-runs", action="store_true", help="print only the summary")
    args = ap.parse_args(argv)

    since: Any = args.since
    if isinstance(since, str):
        try:
            since = float(since)
        except ValueError:
            pass
    runs = load_runs(args.root, exp=args.exp, since=since, sweep=args.sweep)
    if runs.empty:
        print(f"no runs of experiment {args.exp!r} found", file=sys.stderr)
        return 1
    unknown = [c for c in args.by if c not in runs.columns]
    if unknown:
        print(f"--by: unknown column(s) {unknown}; allowed: {list(runs.columns)}", file=sys.stderr)
        return 2
    if not args.no_runs:
        cols = ["test_name", "method", "model", "labelled_fraction", "seed", "status", "duration", "best_acc"]
        print(f"runs ({len(runs)}):")
        print(format_table(runs[cols]))
        print()
    print(f"best test accuracy per {' x '.join(args.by)}:")
    print(format_table(summary(runs, args.by)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
