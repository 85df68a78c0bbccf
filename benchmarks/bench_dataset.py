"""DatasetBuilder against a hand-written torch Dataset doing the same transforms, and spec build time.

    python benchmarks/bench_dataset.py            # prints a table of times and ratios

1. ``ds[i]`` per item: the digits two-view pipeline (normalise once, two random augmentations, the
   label, a global transform adding the channel axis), and a no-transform pipeline (worst case: only
   the builder's own bookkeeping is measured). Both sides use the very same transform objects,
   interleaved rounds, best of N.
2. A DataLoader epoch (batch 64) with 0 and 2 workers over the two-view pipeline.
3. Building a 50-node YAML-style spec: total time, the same 50 constructors called directly, and the
   naive way (one ``hydra.utils.instantiate`` per node).
"""
from __future__ import annotations

import gc
import os
import platform
import sys
import time

import torch
from torch.utils.data import DataLoader, Dataset

from lumo_hydra import DatasetBuilder
from lumo_hydra.data.digits import AddChannelTo, Compose, Normalize, RandomAugment, load
from lumo_hydra.data.spec import build


class HandWrittenTwoView(Dataset):
    def __init__(self, images, targets, norm, aug1, aug2, glob):
        self.images, self.targets = images, targets
        self.norm, self.aug1, self.aug2, self.glob = norm, aug1, aug2, glob

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.norm(self.images[i])
        return self.glob({"xs1": self.aug1(x), "xs2": self.aug2(x), "ys": self.targets[i]})


class HandWrittenPlain(Dataset):
    def __init__(self, images, targets):
        self.images, self.targets = images, targets

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"xs": self.images[i], "ys": self.targets[i]}


def best_of(fn, rounds):
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def side_by_side(a, b, rounds):
    """Interleave a and b (best of ``rounds`` each), so machine load hits both alike."""
    ta = tb = float("inf")
    for _ in range(rounds):
        ta = min(ta, best_of(a, 1))
        tb = min(tb, best_of(b, 1))
    return ta, tb


def per_item(ds):
    n = len(ds)

    def run():
        for i in range(n):
            ds[i]

    return run


def epoch(ds, workers):
    loader = DataLoader(ds, batch_size=64, num_workers=workers, shuffle=False,
                        persistent_workers=workers > 0)

    def run():
        for _ in loader:
            pass

    run()  # start workers once
    return run


def main() -> None:
    d = load("all")
    images, targets = d["images"], d["targets"]
    norm, aug1, aug2 = Normalize(), RandomAugment(0.3), RandomAugment(1.0)
    glob = AddChannelTo(["xs1", "xs2"])
    ours = (DatasetBuilder().add_input("xs", images, norm).add_input("ys", targets)
            .add_output("xs", "xs1", aug1).add_output("xs", "xs2", aug2).add_output("ys", "ys")
            .add_global_transform(glob))
    hand = HandWrittenTwoView(images, targets, norm, aug1, aug2, glob)
    plain_ours = (DatasetBuilder().add_input("xs", images).add_input("ys", targets)
                  .add_output("xs", "xs").add_output("ys", "ys"))
    plain_hand = HandWrittenPlain(images, targets)
    n = len(ours)
    rows = []

    t_o, t_h = side_by_side(per_item(ours), per_item(hand), 7)
    rows.append(("ds[i], digits two-view (per item)", t_o / n * 1e6, t_h / n * 1e6, "us"))
    t_o, t_h = side_by_side(per_item(plain_ours), per_item(plain_hand), 15)
    rows.append(("ds[i], no transforms (per item, worst case)", t_o / n * 1e6, t_h / n * 1e6, "us"))
    for workers in (0, 2):
        t_o, t_h = side_by_side(epoch(ours, workers), epoch(hand, workers), 5)
        rows.append((f"DataLoader epoch, batch 64, {workers} workers", t_o * 1e3, t_h * 1e3, "ms"))

    # 50-node spec: 10 Normalize + 40 Compose nodes, each Compose referencing two earlier nodes
    nodes: dict = {f"n{k}": {"_target_": "lumo_hydra.data.digits.Normalize", "mean": 0.1 * k} for k in range(10)}
    for k in range(10, 50):
        nodes[f"n{k}"] = {"_target_": "lumo_hydra.data.digits.Compose", "transforms": [f"@n{k - 1}", f"@n{k // 2}"]}
    spec = {"nodes": nodes, "inputs": {"x": [1.0, 2.0]}, "outputs": {"x": {"input": "x", "transform": "@n49"}}}

    def direct():
        objs = [Normalize(mean=0.1 * k) for k in range(10)]
        for k in range(10, 50):
            objs.append(Compose([objs[k - 1], objs[k // 2]]))

    def naive_hydra():
        from hydra.utils import instantiate

        objs = [instantiate({"_target_": "lumo_hydra.data.digits.Normalize", "mean": 0.1 * k}) for k in range(10)]
        for k in range(10, 50):
            objs.append(instantiate({"_target_": "lumo_hydra.data.digits.Compose",
                                     "transforms": [objs[k - 1], objs[k // 2]]}))

    build(**spec)
    t_build, t_direct = side_by_side(lambda: build(**spec), direct, 15)
    t_naive = best_of(naive_hydra, 5)
    rows.append(("build 50-node spec (total)", t_build * 1e3, t_direct * 1e3, "ms"))

    print(f"# DatasetBuilder benchmark  {time.strftime('%Y-%m-%d')}  Python {platform.python_version()}  "
          f"torch {torch.__version__}  cores {os.cpu_count()}")
    print(f"{'case':48s} {'ours':>10s} {'anchor':>10s} {'ratio':>7s}")
    for name, a, b, unit in rows:
        print(f"{name:48s} {a:8.2f}{unit:>2s} {b:8.2f}{unit:>2s} {a / b:7.2f}x")
    print(f"build 50-node spec: {t_build * 1e3:.1f} ms total, {t_direct * 1e3:.2f} ms in the constructors "
          f"called directly, so {(t_build - t_direct) * 1e3:.1f} ms of build overhead (target < 50 ms); "
          f"one hydra.utils.instantiate per node instead: {t_naive * 1e3:.1f} ms ({t_naive / t_build:.1f}x slower)")
    print("anchor for ds[i] and DataLoader rows: a hand-written torch Dataset with the same transform objects;"
          " anchor for the build row: the 50 constructors called directly in Python")


if __name__ == "__main__":
    sys.exit(main())
