"""DatasetBuilder against the anchor, a hand-written torch Dataset doing the same transforms, and the
spec build time against the same constructors called directly. Target (ANCHORS.md): within 1.15x per
item; building a 50-node spec adds under 50 ms.

    env -u PYTHONDONTWRITEBYTECODE python benchmarks/bench_dataset.py [--items N] [--rounds N] [--workers 0 2] [--nodes 50]

1. ``ds[i]`` per item: the digits two-view pipeline (normalise once, two random augmentations, the
   label, a global transform adding the channel axis), and a no-transform pipeline (worst case: only
   the builder's own bookkeeping is measured). Both sides use the very same transform objects,
   interleaved rounds (7 and 15 by default).
2. A DataLoader epoch (batch 64) with 0 and 2 workers over the two-view pipeline (5 rounds).
3. Building a 50-node YAML-style spec: total time, the same 50 constructors called directly, and the
   naive way (one ``hydra.utils.instantiate`` per node).

Printed: medians with their min-max spread over the rounds, the ratio of the medians (and its range
over the rounds), the load average at the start and the end.
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time

from _benchlib import load_average, work_folder


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="DatasetBuilder[i] and DataLoader epochs against the anchor, a hand-written "
                    "torch.utils.data.Dataset with the same transform objects (target: within 1.15x per item), "
                    "and building a YAML-style spec against its constructors called directly (target: < 50 ms).",
        epilog="Run with PYTHONDONTWRITEBYTECODE unset.")
    ap.add_argument("--items", type=int, default=0, help="digits used (default 0: all 1797)")
    ap.add_argument("--rounds", type=int, default=0,
                    help="rounds of every case (default 0: 7 for two-view ds[i], 15 for plain ds[i] and the "
                         "spec build, 5 for DataLoader epochs and the naive build)")
    ap.add_argument("--workers", type=int, nargs="*", default=[0, 2],
                    help="DataLoader worker counts, one row each (default 0 2; none: no DataLoader rows)")
    ap.add_argument("--nodes", type=int, default=50, help="nodes of the built spec (default 50, at least 11)")
    ap.add_argument("--work", help="folder for LUMO_HOME / LUMO_CACHE_DIR (default: a fresh temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    return ap.parse_args(argv)



def spread(xs: list[float], scale: float) -> str:
    return f"{statistics.median(xs) * scale:.2f} ({min(xs) * scale:.2f}-{max(xs) * scale:.2f})"


def timed(fn) -> float:
    gc.collect()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def side_by_side(a, b, rounds):
    """Interleave a and b, ``rounds`` times each, so machine load hits both alike: the two lists of times."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(timed(a))
        tb.append(timed(b))
    return ta, tb


def hand_written(images, targets, norm, aug1, aug2, glob):
    """The anchors: two hand-written torch Datasets (two-view with the given transforms, and plain)."""
    from torch.utils.data import Dataset

    class HandWrittenTwoView(Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            x = norm(images[i])
            return glob({"xs1": aug1(x), "xs2": aug2(x), "ys": targets[i]})

    class HandWrittenPlain(Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return {"xs": images[i], "ys": targets[i]}

    return HandWrittenTwoView(), HandWrittenPlain()


def per_item(ds):
    n = len(ds)

    def run():
        for i in range(n):
            ds[i]

    return run


def epoch(ds, workers):
    from torch.utils.data import DataLoader

    loader = DataLoader(ds, batch_size=64, num_workers=workers, shuffle=False,
                        persistent_workers=workers > 0)

    def run():
        for _ in loader:
            pass

    run()  # start workers once
    return run


def spec_cases(nodes_n: int):
    """A spec of ``nodes_n`` nodes (10 Normalize, then Compose nodes referencing two earlier nodes), and
    the same objects built directly and the naive way (one hydra.utils.instantiate per node)."""
    from lumo_hydra.data.digits import Compose, Normalize

    k0 = min(10, nodes_n - 1)
    nodes: dict = {f"n{k}": {"_target_": "lumo_hydra.data.digits.Normalize", "mean": 0.1 * k} for k in range(k0)}
    for k in range(k0, nodes_n):
        nodes[f"n{k}"] = {"_target_": "lumo_hydra.data.digits.Compose", "transforms": [f"@n{k - 1}", f"@n{k // 2}"]}
    spec = {"nodes": nodes, "inputs": {"x": [1.0, 2.0]},
            "outputs": {"x": {"input": "x", "transform": f"@n{nodes_n - 1}"}}}

    def direct():
        objs = [Normalize(mean=0.1 * k) for k in range(k0)]
        for k in range(k0, nodes_n):
            objs.append(Compose([objs[k - 1], objs[k // 2]]))

    def naive_hydra():
        from hydra.utils import instantiate

        objs = [instantiate({"_target_": "lumo_hydra.data.digits.Normalize", "mean": 0.1 * k}) for k in range(k0)]
        for k in range(k0, nodes_n):
            objs.append(instantiate({"_target_": "lumo_hydra.data.digits.Compose",
                                     "transforms": [objs[k - 1], objs[k // 2]]}))

    return spec, direct, naive_hydra


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    if a.nodes < 11:
        raise SystemExit("--nodes: at least 11")
    with work_folder(a) as work:
        os.environ.update(LUMO_HOME=str(work / "lumo-home"), LUMO_CACHE_DIR=str(work / "cache"))
        run(a)


def run(a: argparse.Namespace) -> None:
    load0 = load_average()
    import torch

    from lumo_hydra import DatasetBuilder
    from lumo_hydra.data.digits import AddChannelTo, Normalize, RandomAugment, load
    from lumo_hydra.data.spec import build

    d = load("all")
    images, targets = d["images"], d["targets"]
    if a.items:
        images, targets = images[:a.items], targets[:a.items]
    norm, aug1, aug2 = Normalize(), RandomAugment(0.3), RandomAugment(1.0)
    glob = AddChannelTo(["xs1", "xs2"])
    ours = (DatasetBuilder().add_input("xs", images, norm).add_input("ys", targets)
            .add_output("xs", "xs1", aug1).add_output("xs", "xs2", aug2).add_output("ys", "ys")
            .add_global_transform(glob))
    hand, plain_hand = hand_written(images, targets, norm, aug1, aug2, glob)
    plain_ours = (DatasetBuilder().add_input("xs", images).add_input("ys", targets)
                  .add_output("xs", "xs").add_output("ys", "ys"))
    n = len(ours)

    def rounds(default: int) -> int:
        return a.rounds or default

    rows = []
    t_o, t_h = side_by_side(per_item(ours), per_item(hand), rounds(7))
    rows.append(("ds[i], digits two-view (per item)", t_o, t_h, 1e6 / n, "us"))
    t_o, t_h = side_by_side(per_item(plain_ours), per_item(plain_hand), rounds(15))
    rows.append(("ds[i], no transforms (per item, worst case)", t_o, t_h, 1e6 / n, "us"))
    for workers in a.workers:
        t_o, t_h = side_by_side(epoch(ours, workers), epoch(hand, workers), rounds(5))
        rows.append((f"DataLoader epoch, batch 64, {workers} workers", t_o, t_h, 1e3, "ms"))

    spec, direct, naive_hydra = spec_cases(a.nodes)
    build(**spec)
    t_build, t_direct = side_by_side(lambda: build(**spec), direct, rounds(15))
    t_naive = [timed(naive_hydra) for _ in range(rounds(5))]
    rows.append((f"build {a.nodes}-node spec (total)", t_build, t_direct, 1e3, "ms"))

    med = statistics.median
    print(f"# DatasetBuilder benchmark  {time.strftime('%Y-%m-%d %H:%M')}  Python {platform.python_version()}  "
          f"torch {torch.__version__}  cores {os.cpu_count()}  {n} items; load average at start {load0}")
    print(f"{'case':46s} {'ours: median (min-max)':>26s} {'anchor: median (min-max)':>26s} {'ratio (per round)':>22s}")
    for name, o, h, scale, unit in rows:
        per_round = [x / y for x, y in zip(o, h)]
        print(f"{name:46s} {spread(o, scale):>23s} {unit} {spread(h, scale):>23s} {unit} "
              f"{med(o) / med(h):6.2f}x ({min(per_round):.2f}-{max(per_round):.2f})")
    ratio = med(rows[0][1]) / med(rows[0][2])
    print(f"ratio ds[i] two-view ours / hand-written (the anchor): {ratio:.2f}x "
          f"(target <= 1.15x: {'met' if ratio <= 1.15 else 'MISSED'})")
    over = med(t_build) - med(t_direct)
    print(f"build {a.nodes}-node spec: {med(t_build) * 1e3:.1f} ms total, {med(t_direct) * 1e3:.2f} ms in the "
          f"constructors called directly, so {over * 1e3:.1f} ms of build overhead (target < 50 ms: "
          f"{'met' if over < 0.05 else 'MISSED'}); one hydra.utils.instantiate per node instead: "
          f"{spread(t_naive, 1e3)} ms ({med(t_naive) / med(t_build):.1f}x slower)")
    print("anchor for ds[i] and DataLoader rows: a hand-written torch Dataset with the same transform objects;"
          " anchor for the build row: the constructors called directly in Python")
    print(f"load average at end {load_average()}")


if __name__ == "__main__":
    sys.exit(main())
