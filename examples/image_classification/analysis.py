"""Compare the template's runs and save plots (PNG), from the store alone (``lumo_hydra.Watcher``).

    python analysis.py                                 # all runs -> plots/acc_curves.png, plots/best_vs_labelled_fraction.png
    python analysis.py --out figs --param lr --since 2h

Plots:
- ``acc_curves.png``: test accuracy per epoch for every run (from the metric histories,
  ``Watcher.history(test_name, 'acc')``), one colour per method, the per-method mean in bold;
- ``best_vs_<param>.png``: best test accuracy against a swept parameter (mean and spread over seeds),
  one line per method.

``analysis.ipynb`` calls the same functions.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from results import EXP_NAME, format_table, load_runs, summary  # noqa: E402


def histories(runs: pd.DataFrame, metric: str = "acc", root: str | None = None) -> pd.DataFrame:
    """The ``metric`` history of every run in ``runs``: columns ``test_name, method, step, value``."""
    from lumo_hydra import Watcher

    w = Watcher(root)
    parts = []
    for row in runs.itertuples():
        try:
            h = w.history(row.test_name, metric)
        except (ValueError, LookupError):  # the run has no such metric (e.g. it failed before epoch 1)
            continue
        parts.append(pd.DataFrame({"test_name": row.test_name, "method": row.method, "step": h["step"], "value": h["value"]}))
    if not parts:
        return pd.DataFrame(columns=["test_name", "method", "step", "value"])
    return pd.concat(parts, ignore_index=True)


def plot_curves(hist: pd.DataFrame, path: str, metric: str = "acc") -> str:
    """One thin line per run, the per-method mean per step in bold; saved to ``path``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    methods = sorted(hist["method"].dropna().unique())
    colours = {m: f"C{i}" for i, m in enumerate(methods)}
    for (_, method), h in hist.groupby(["test_name", "method"]):
        ax.plot(h["step"] + 1, h["value"], color=colours[method], alpha=0.35, lw=1)
    for method, h in hist.groupby("method"):
        mean = h.groupby("step")["value"].mean()
        ax.plot(mean.index + 1, mean.values, color=colours[method], lw=2.5, marker="o", ms=3, label=f"{method} (mean)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test {metric}")
    ax.set_title(f"test {metric} per epoch ({hist['test_name'].nunique()} runs)")
    ax.grid(alpha=0.3)
    if methods:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_best_vs(runs: pd.DataFrame, param: str, path: str) -> str:
    """Best test accuracy against ``param`` (mean with min-max bars over runs), one line per method."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (method, r) in enumerate(runs.dropna(subset=["best_acc"]).groupby("method")):
        g = r.groupby(param)["best_acc"]
        mean, lo, hi = g.mean(), g.min(), g.max()
        ax.errorbar(mean.index, mean.values, yerr=[mean - lo, hi - mean], color=f"C{i}", marker="o", capsize=3, label=method)
    ax.set_xlabel(param)
    ax.set_ylabel("best test acc")
    ax.set_title(f"best test accuracy against {param}")
    if param in ("labelled_fraction", "lr"):
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def analyse(
    out: str = "plots",
    param: str = "labelled_fraction",
    root: str | None = None,
    exp: str = EXP_NAME,
    since: Any = None,
    sweep: str | None = None,
) -> dict[str, Any]:
    """Load the runs, print the comparison, save both plots; returns ``{'runs', 'summary', 'plots'}``."""
    runs = load_runs(root, exp=exp, since=since, sweep=sweep)
    if runs.empty:
        raise SystemExit(f"no runs of experiment {exp!r} in the store")
    if param not in runs.columns:
        raise SystemExit(f"--param: unknown column {param!r}; allowed: {list(runs.columns)}")
    os.makedirs(out, exist_ok=True)
    table = summary(runs, ["method", param])
    plots = [
        plot_curves(histories(runs, "acc", root), os.path.join(out, "acc_curves.png")),
        plot_best_vs(runs, param, os.path.join(out, f"best_vs_{param}.png")),
    ]
    return {"runs": runs, "summary": table, "plots": plots}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="plots", help="folder for the PNG files (default: plots)")
    ap.add_argument("--param", default="labelled_fraction", help="the swept parameter for the second plot")
    ap.add_argument("--root", default=None, help="store root (default: $LUMO_HOME)")
    ap.add_argument("--exp", default=EXP_NAME)
    ap.add_argument("--since", default=None, help="only runs started since (age like 2h, Unix time, ISO date)")
    ap.add_argument("--sweep", default=None, help="only the jobs of this sweep (id or prefix)")
    args = ap.parse_args(argv)
    since: Any = args.since
    try:
        since = float(since) if since is not None else None
    except ValueError:
        pass
    res = analyse(args.out, args.param, args.root, args.exp, since, args.sweep)
    print(format_table(res["summary"]))
    for p in res["plots"]:
        print("saved", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
