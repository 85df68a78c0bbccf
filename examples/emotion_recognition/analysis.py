"""Plots of the template's runs (PNG), from the store alone (``lumo_hydra.Watcher``).

    python analysis.py                         # all runs -> plots/f1_by_model.png, plots/f1_curves.png
    python analysis.py --out figs --since 2h

- ``f1_by_model.png``: test weighted F1 (at the best dev epoch) per model and modality: the mean over seeds
  as a bar, one dot per run;
- ``f1_curves.png``: test weighted F1 per epoch (``Watcher.history(run, 'f1')``), one thin line per run and
  the mean per model and modality in bold.
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
from results import EXP_NAME, load_runs, since_arg, summary  # noqa: E402


def _label(row: Any) -> str:
    return f"{row.model}\n{row.modality}"


def histories(runs: pd.DataFrame, metric: str = "f1", root: str | None = None) -> pd.DataFrame:
    """The ``metric`` history of every run: columns ``test_name, group, step, value``."""
    from lumo_hydra import Watcher

    w = Watcher(root)
    parts = []
    for row in runs.itertuples():
        try:
            h = w.history(row.test_name, metric)
        except (ValueError, LookupError):  # the run has no such metric (it failed before epoch 1)
            continue
        parts.append(pd.DataFrame({"test_name": row.test_name, "group": f"{row.model} ({row.modality})",
                                   "step": h["step"], "value": h["value"]}))
    if not parts:
        return pd.DataFrame(columns=["test_name", "group", "step", "value"])
    return pd.concat(parts, ignore_index=True)


def plot_f1_by_model(runs: pd.DataFrame, path: str) -> str:
    """Bars: mean test F1 per model x modality (best first); dots: the runs (seeds)."""
    table = summary(runs.dropna(subset=["f1"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(table)), 4))
    ax.bar(range(len(table)), table["f1_mean"], yerr=table["f1_std"].fillna(0), color="C0", alpha=0.6, capsize=4)
    for i, row in enumerate(table.itertuples()):
        pts = runs[(runs["model"] == row.model) & (runs["modality"] == row.modality)]["f1"].astype(float)
        ax.plot([i] * len(pts), pts, "k.", ms=6)
    ax.set_xticks(range(len(table)), [_label(r) for r in table.itertuples()], fontsize=8)
    ax.set_ylabel("test weighted F1 (best dev epoch)")
    ax.set_title("weighted F1 per model and modality (mean, std and runs)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_curves(hist: pd.DataFrame, path: str, metric: str = "f1") -> str:
    """One thin line per run, the mean per model x modality per epoch in bold."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    groups = sorted(hist["group"].dropna().unique())
    colours = {g: f"C{i % 10}" for i, g in enumerate(groups)}
    for (_, group), h in hist.groupby(["test_name", "group"]):
        ax.plot(h["step"] + 1, h["value"], color=colours[group], alpha=0.25, lw=1)
    for group, h in hist.groupby("group"):
        mean = h.groupby("step")["value"].mean()
        ax.plot(mean.index + 1, mean.values, color=colours[group], lw=2.2, marker="o", ms=3, label=group)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test {metric}")
    ax.set_title(f"test {metric} per epoch ({hist['test_name'].nunique()} runs)")
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def analyse(out: str = "plots", root: str | None = None, exp: str = EXP_NAME, since: Any = None,
            sweep: str | None = None) -> dict[str, Any]:
    """Load the runs, save both plots; returns ``{'runs', 'summary', 'plots'}``."""
    runs = load_runs(root, exp=exp, since=since, sweep=sweep)
    if runs.empty:
        raise SystemExit(f"no runs of experiment {exp!r} in the store")
    os.makedirs(out, exist_ok=True)
    plots = [
        plot_f1_by_model(runs, os.path.join(out, "f1_by_model.png")),
        plot_curves(histories(runs, "f1", root), os.path.join(out, "f1_curves.png")),
    ]
    return {"runs": runs, "summary": summary(runs), "plots": plots}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="plots", help="folder for the PNG files (default: plots)")
    ap.add_argument("--root", default=None, help="store root (default: $LUMO_HOME)")
    ap.add_argument("--exp", default=EXP_NAME)
    ap.add_argument("--since", default=None, help="only runs started since (age like 2h, Unix time, ISO date)")
    ap.add_argument("--sweep", default=None, help="only the jobs of this sweep (id or prefix)")
    args = ap.parse_args(argv)
    res = analyse(args.out, args.root, args.exp, since_arg(args.since), args.sweep)
    for p in res["plots"]:
        print("saved", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
