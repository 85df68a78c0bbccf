"""Digits (scikit-learn's bundled 8x8 handwritten digits, no download) and small numpy transforms.

The ``_target_`` s of the shipped dataset specs (``conf/lumo/dataset/digits*.yaml``). numpy only; torch is
never imported here (torch's default collate turns the numpy arrays into tensors). Every transform is
a small picklable class, so builders using them work with DataLoader workers (fork or spawn).
"""
from __future__ import annotations

import functools
import os
import sys
import zlib
from collections.abc import Sequence
from typing import Any

from lumo_hydra.errors import LumoValueError

__all__ = ["load", "Normalize", "RandomAugment", "AddChannel", "AddChannelTo", "Compose"]

_SPLITS = ("train", "test", "all")


@functools.lru_cache(maxsize=4)
def _all_digits() -> tuple:
    import numpy as np

    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - scikit-learn is a dev/test extra
        raise ImportError("lumo_hydra.data_digits needs scikit-learn (pip install scikit-learn)") from e
    bunch = load_digits()
    images = (np.asarray(bunch.images, dtype=np.float32) / 16.0)
    targets = np.asarray(bunch.target, dtype=np.int64)
    images.setflags(write=False)
    targets.setflags(write=False)
    return images, targets


def load(split: str = "train", test_fraction: float = 0.2, seed: int = 0, limit: int | None = None) -> dict:
    """The digits as ``{'images': float32 (N, 8, 8) in [0, 1], 'targets': int64 (N,)}``.

    ``split`` is ``'train'``, ``'test'`` or ``'all'``; the test split is a fixed random ``test_fraction``
    of the 1797 digits (permutation seeded by ``seed``); ``limit`` keeps the first ``limit`` items.
    """
    import numpy as np

    if split not in _SPLITS:
        raise LumoValueError(f"invalid value for 'split': {split!r}; allowed: one of {list(_SPLITS)}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise LumoValueError(f"invalid value for 'test_fraction': {test_fraction!r}; allowed: (0, 1)")
    images, targets = _all_digits()
    if split != "all":
        order = np.random.default_rng(seed).permutation(len(targets))
        n_test = int(round(len(targets) * float(test_fraction)))
        keep = np.sort(order[:n_test] if split == "test" else order[n_test:])
        images, targets = images[keep], targets[keep]
    if limit is not None:
        if int(limit) < 0:
            raise LumoValueError(f"invalid value for 'limit': {limit!r}; allowed: an int >= 0 or None")
        images, targets = images[: int(limit)], targets[: int(limit)]
    return {"images": images, "targets": targets}


class Normalize:
    """``(x - mean) / std`` as float32."""

    def __init__(self, mean: float = 0.5, std: float = 0.25) -> None:
        if not std > 0:
            raise LumoValueError(f"invalid value for 'std': {std!r}; allowed: > 0")
        self.mean = float(mean)
        self.std = float(std)

    def __call__(self, x: Any) -> Any:
        import numpy as np

        return ((np.asarray(x, dtype=np.float32) - self.mean) / self.std).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class RandomAugment:
    """Random shift (up to ``round(max_shift * strength)`` pixels each way) plus Gaussian noise
    (standard deviation ``noise * strength``) on a 2-D image; ``strength=0`` is the identity.

    Randomness comes from a generator per process: seeded with ``(seed, salt, worker id)`` when ``seed``
    is given (reproducible), else from fresh OS entropy, so DataLoader workers never repeat each other.
    ``salt`` (an int or a string, e.g. the view's name) keeps two views seeded from the same run seed
    from drawing the same numbers.
    """

    def __init__(self, strength: float = 1.0, max_shift: int = 2, noise: float = 0.1, seed: int | None = None,
                 salt: int | str = 0):
        if not 0.0 <= float(strength) <= 10.0:
            raise LumoValueError(f"invalid value for 'strength': {strength!r}; allowed: [0, 10]")
        if int(max_shift) < 0:
            raise LumoValueError(f"invalid value for 'max_shift': {max_shift!r}; allowed: an int >= 0")
        if float(noise) < 0:
            raise LumoValueError(f"invalid value for 'noise': {noise!r}; allowed: >= 0")
        self.strength = float(strength)
        self.max_shift = int(max_shift)
        self.noise = float(noise)
        if isinstance(salt, bool) or not isinstance(salt, (int, str)) or (isinstance(salt, int) and salt < 0):
            raise LumoValueError(f"invalid value for 'salt': {salt!r}; allowed: an int >= 0 or a string")
        self.seed = seed
        self.salt = salt
        self._rng: Any = None
        self._pid: int | None = None

    def _generator(self) -> Any:
        pid = os.getpid()
        if self._rng is None or self._pid != pid:
            import numpy as np

            if self.seed is None:
                self._rng = np.random.default_rng()
            else:
                key = [int(self.seed), _worker_id()]
                if self.salt != 0:  # (salt 0 keeps the streams of earlier versions)
                    key.insert(1, self.salt if isinstance(self.salt, int) else zlib.crc32(self.salt.encode("utf-8")))
                self._rng = np.random.default_rng(key)
            self._pid = pid
        return self._rng

    def __call__(self, x: Any) -> Any:
        import numpy as np

        img = np.asarray(x, dtype=np.float32)
        rng = self._generator()
        shift = int(round(self.max_shift * self.strength))
        if shift:
            dy, dx = rng.integers(-shift, shift + 1, size=2)
            img = _shift2d(img, int(dy), int(dx))
        sigma = self.noise * self.strength
        if sigma:
            img = img + rng.normal(0.0, sigma, size=img.shape).astype(np.float32)
        return img.astype(np.float32, copy=False)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_rng"] = None  # each process draws its own numbers
        state["_pid"] = None
        return state

    def __repr__(self) -> str:
        salt = f", salt={self.salt!r}" if self.salt != 0 else ""
        return (f"RandomAugment(strength={self.strength}, max_shift={self.max_shift}, noise={self.noise}, "
                f"seed={self.seed}{salt})")


class AddChannel:
    """``(H, W) -> (1, H, W)``, the layout of a one-channel image for a convolution."""

    def __call__(self, x: Any) -> Any:
        import numpy as np

        return np.asarray(x)[None]

    def __repr__(self) -> str:
        return "AddChannel()"


class AddChannelTo:
    """A global transform (dict in, dict out): ``AddChannel`` applied to the outputs named in ``keys``."""

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = [str(k) for k in keys]

    def __call__(self, item: dict) -> dict:
        import numpy as np

        missing = [k for k in self.keys if k not in item]
        if missing:
            raise LumoValueError(f"invalid value for 'keys': {missing} not in the item; allowed: {list(item)}")
        return {k: (np.asarray(v)[None] if k in self.keys else v) for k, v in item.items()}

    def __repr__(self) -> str:
        return f"AddChannelTo(keys={self.keys})"


class Compose:
    """Apply ``transforms`` in order."""

    def __init__(self, transforms: Sequence[Any]) -> None:
        self.transforms = list(transforms)
        for i, t in enumerate(self.transforms):
            if not callable(t):
                raise LumoValueError(f"invalid value for 'transforms[{i}]': {t!r}; allowed: a callable")

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


def _shift2d(img: Any, dy: int, dx: int) -> Any:
    import numpy as np

    out = np.zeros_like(img)
    h, w = img.shape[-2:]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = img[..., ys, xs]
    return out


def _worker_id() -> int:
    torch = sys.modules.get("torch")  # never import torch just for this
    if torch is None:
        return 0
    info = torch.utils.data.get_worker_info()
    return 0 if info is None else int(info.id) + 1
