"""Write the synthetic MELD-layout data set (NOT MELD: a generated stand-in with a known structure).

    python make_data.py                                  # -> data/synthetic (what train.py reads by default)
    python make_data.py --out /tmp/erc --train 60 --dev 15 --test 20 --seed 3
    python train.py data.root=/tmp/erc

The layout is exactly MELD's (``train_sent_emo.csv``, ``dev_sent_emo.csv``, ``test_sent_emo.csv`` with
MELD's columns, plus ``features/<split>_<audio|visual>.npz``), so the same loader reads both; how emotions,
words and features are generated is described in ``erc/synthetic.py`` and README.md. The folder gets a
``synthetic.json`` with every setting, and runs on it are tagged ``synthetic``.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from erc.data import default_root  # noqa: E402
from erc.synthetic import DEFAULTS, generate  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(default_root()), help="output folder (default: %(default)s)")
    for split in ("train", "dev", "test"):
        ap.add_argument(f"--{split}", type=int, default=DEFAULTS["dialogues"][split], help=f"dialogues in {split} (default %(default)s)")
    ap.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="the data's seed (default %(default)s)")
    ap.add_argument("--if-missing", action="store_true", help="do nothing when --out already holds a synthetic set")
    args = ap.parse_args(argv)
    for split in ("train", "dev", "test"):
        if getattr(args, split) < 1:
            ap.error(f"--{split}: invalid value {getattr(args, split)}; allowed: an integer >= 1")
    if args.if_missing and os.path.isfile(os.path.join(args.out, "synthetic.json")):
        print(f"synthetic set already in {args.out}")
        return 0
    out = generate(args.out, seed=args.seed, dialogues={"train": args.train, "dev": args.dev, "test": args.test})
    print(f"wrote the synthetic MELD-layout set (not MELD) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
