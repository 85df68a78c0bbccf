"""The pieces the dataset specs (``conf/dataset/*.yaml``) wire together, and the batch collation.

Per utterance (one item of the ``DatasetBuilder``) a spec reads: its token ids (from the shared
vocabulary), its audio and visual vectors, its speaker id, and its *context window*: the indices of the
previous ``window`` utterances of the same dialogue, through which the ``ctx_*`` outputs gather the same
modalities for those utterances. :func:`collate` pads everything to a batch with masks (utterances have
different lengths, and windows are shorter at the start of a dialogue).

Nothing here imports torch except :func:`collate` (at call time).
"""
from __future__ import annotations

import functools
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lumo_hydra.errors import LumoValueError

from .meld import MeldSplit, load_split

__all__ = ["Vocabulary", "SpeakerIndex", "Tokenize", "TokenIds", "tokenize_all", "speaker_ids", "context_windows", "Gather", "collate",
           "default_root", "resolve_root"]

PAD, UNK = "<pad>", "<unk>"
_TOKEN = re.compile(r"[a-z0-9']+|[!?]")
TEMPLATE = Path(__file__).resolve().parents[1]


def default_root() -> Path:
    """Where the synthetic set lives when ``data.root`` is unset: ``<template>/data/synthetic``."""
    return TEMPLATE / "data" / "synthetic"


def resolve_root(root: str | os.PathLike | None) -> str:
    """``root`` as an absolute path; ``None``: the synthetic set, generated on first use (see make_data.py)."""
    if root is not None and str(root) not in ("", "None", "null"):
        return str(Path(root).expanduser().resolve())
    path = default_root()
    if not (path / "synthetic.json").is_file():
        from .synthetic import generate

        generate(path, replace=False)  # parallel jobs of a sweep may race here: the first one wins
    return str(path)


def words(text: str) -> list[str]:
    """Lower-cased words, plus ``!`` and ``?`` as tokens."""
    return _TOKEN.findall(text.lower())


class Vocabulary:
    """Word <-> id; id 0 is padding, 1 unknown words. Build it from the training split only."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.itos = [PAD, UNK, *[t for t in tokens if t not in (PAD, UNK)]]
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(w, 1) for w in words(text)]

    @classmethod
    def from_texts(cls, texts: Sequence[str], min_freq: int = 1, max_size: int | None = None) -> Vocabulary:
        counts = Counter(w for t in texts for w in words(t))
        kept = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        return cls(kept[:max_size] if max_size else kept)

    @staticmethod
    def build(root: str | None, split: str = "train", min_freq: int = 1, max_size: int | None = None) -> Vocabulary:
        """The vocabulary of ``split`` (cached per process, so the train, dev and test specs share one object)."""
        return _vocab(resolve_root(root), split, int(min_freq), max_size)


@functools.lru_cache(maxsize=8)
def _vocab(root: str, split: str, min_freq: int, max_size: int | None) -> Vocabulary:
    return Vocabulary.from_texts(load_split(root, split, modalities=("text",)).utterances, min_freq, max_size)


class SpeakerIndex:
    """Speaker name -> id: the ``top`` most frequent training speakers get 1..top, everyone else 0."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.index = {n: i + 1 for i, n in enumerate(self.names)}

    def __call__(self, name: str) -> int:
        return self.index.get(name, 0)

    def __len__(self) -> int:
        return len(self.names) + 1

    def __repr__(self) -> str:
        return f"SpeakerIndex({self.names})"

    @staticmethod
    def build(root: str | None, split: str = "train", top: int = 10) -> SpeakerIndex:
        return _speakers(resolve_root(root), split, int(top))


@functools.lru_cache(maxsize=8)
def _speakers(root: str, split: str, top: int) -> SpeakerIndex:
    counts = Counter(load_split(root, split, modalities=("text",)).speakers)
    return SpeakerIndex(sorted(counts, key=lambda n: (-counts[n], n))[:top])


class Tokenize:
    """Text -> int64 token ids (at least one: an empty text becomes ``[<unk>]``), cut to ``max_len``."""

    def __init__(self, vocab: Vocabulary, max_len: int = 32) -> None:
        if int(max_len) < 1:
            raise LumoValueError(f"max_len: invalid value {max_len!r}; allowed: an integer >= 1")
        self.vocab = vocab
        self.max_len = int(max_len)

    def __call__(self, text: str) -> np.ndarray:
        ids = self.vocab.encode(text)[: self.max_len] or [1]
        return np.asarray(ids, dtype=np.int64)

    def __repr__(self) -> str:
        return f"Tokenize({self.vocab!r}, max_len={self.max_len})"


class TokenIds(list):
    """The token ids of every utterance (a list of int64 arrays) and the ``vocab`` they index."""

    def __init__(self, ids: Sequence[np.ndarray], vocab: Vocabulary) -> None:
        super().__init__(ids)
        self.vocab = vocab


def tokenize_all(texts: Sequence[str], tokenize: Tokenize) -> TokenIds:
    """Every text tokenized once (a node: the tokens input and the context gather share it)."""
    return TokenIds([tokenize(t) for t in texts], tokenize.vocab)


def speaker_ids(names: Sequence[str], index: SpeakerIndex) -> np.ndarray:
    """Every speaker name mapped once to its id."""
    return np.asarray([index(n) for n in names], dtype=np.int64)


def context_windows(split: MeldSplit, window: int = 6) -> list[np.ndarray]:
    """For each utterance, the indices of the previous ``window`` utterances of its dialogue (oldest first)."""
    window = int(window)
    if window < 0:
        raise LumoValueError(f"window: invalid value {window!r}; allowed: an integer >= 0")
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(split)
    for rows in split.dialogues().values():
        for pos, i in enumerate(rows.tolist()):
            out[i] = rows[max(0, pos - window):pos]
    return out


class Gather:
    """Output transform of the context input: ``indices -> [items[i] for i in indices]`` (stacked when the
    items are arrays of one shape, e.g. feature rows; a list for token arrays of different lengths)."""

    def __init__(self, items: Any, stack: bool = True) -> None:
        self.items = items
        self.stack = bool(stack)

    def __call__(self, indices: np.ndarray) -> Any:
        if self.stack and isinstance(self.items, np.ndarray):
            return self.items[indices]
        return [self.items[int(i)] for i in indices]

    def __repr__(self) -> str:
        return f"Gather({type(self.items).__name__}[{len(self.items)}])"


def _pad_tokens(seqs: Sequence[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros((len(seqs), max(length, 1)), dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad a list of items into tensors.

    ``tokens`` -> ``(B, L)`` (0 = padding); ``audio``/``visual`` -> ``(B, D)``; ``speaker``/``ys`` -> ``(B,)``;
    ``ctx_tokens`` -> ``(B, K, L)``, ``ctx_audio``/``ctx_visual`` -> ``(B, K, D)``, ``ctx_speaker`` -> ``(B, K)``,
    plus ``ctx_mask`` ``(B, K)`` (True where a context utterance exists; K = the longest window in the batch).
    """
    import torch

    keys = items[0].keys()
    out: dict[str, Any] = {}
    if "tokens" in keys:
        out["tokens"] = torch.from_numpy(_pad_tokens([it["tokens"] for it in items], max(len(it["tokens"]) for it in items)))
    for k in ("audio", "visual"):
        if k in keys:
            out[k] = torch.from_numpy(np.stack([np.asarray(it[k], dtype=np.float32) for it in items]))
    for k in ("speaker", "ys"):
        if k in keys:
            out[k] = torch.as_tensor([int(it[k]) for it in items], dtype=torch.long)
    ctx_keys = [k for k in keys if k.startswith("ctx_")]
    if ctx_keys:
        lengths = [len(it[ctx_keys[0]]) for it in items]
        kmax = max(lengths)
        out["ctx_mask"] = torch.as_tensor([[j < n for j in range(kmax)] for n in lengths], dtype=torch.bool).reshape(len(items), kmax)
        for k in ctx_keys:
            out[k] = _collate_context(k, [it[k] for it in items], kmax)
    return out


def _collate_context(key: str, values: list[Any], kmax: int) -> Any:
    import torch

    b = len(values)
    if key == "ctx_tokens":
        lmax = max([len(t) for v in values for t in v] or [1])
        arr = np.zeros((b, kmax, lmax), dtype=np.int64)
        for i, v in enumerate(values):
            for j, t in enumerate(v):
                arr[i, j, : len(t)] = t
        return torch.from_numpy(arr)
    if key == "ctx_speaker":
        arr = np.zeros((b, kmax), dtype=np.int64)
        for i, v in enumerate(values):
            arr[i, : len(v)] = np.asarray(v, dtype=np.int64)
        return torch.from_numpy(arr)
    dim = next((np.asarray(v).shape[-1] for v in values if np.asarray(v).ndim == 2), 0)
    arr = np.zeros((b, kmax, dim), dtype=np.float32)
    for i, v in enumerate(values):
        if len(v):
            arr[i, : len(v)] = np.asarray(v, dtype=np.float32)
    return torch.from_numpy(arr)


def load(root: str | None, split: str = "train", modalities: Sequence[str] = ("text", "audio", "visual"),
         missing_features: str = "error") -> MeldSplit:
    """The ``meld`` node of the specs: :func:`erc.meld.load_split` with ``root=None`` meaning the synthetic set."""
    return load_split(resolve_root(root), split, modalities, missing_features)
