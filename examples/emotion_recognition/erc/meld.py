"""MELD's published layout, read and checked: the three CSV files plus per-utterance feature files.

A MELD root folder (``data.root=``) holds::

    train_sent_emo.csv  dev_sent_emo.csv  test_sent_emo.csv        # MELD's CSV files, as published
    features/train_audio.npz   features/train_visual.npz           # one file per split and modality
    features/dev_audio.npz     ...

The CSV columns are MELD's: ``Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID,
Utterance_ID, Season, Episode, StartTime, EndTime`` (any order; extra columns are ignored). A feature file
is a NumPy ``.npz`` archive (read with ``allow_pickle=False``) with two arrays:

- ``ids``: int, shape ``(N, 2)``: ``(Dialogue_ID, Utterance_ID)`` of each row;
- ``features``: float, shape ``(N, D)``: one vector per utterance (any ``D``; rows in any order).

The loader joins the features on ``(Dialogue_ID, Utterance_ID)``. :func:`write_features` writes such a
file from a mapping ``{(dia, utt): vector}`` (or from MELD's ``"dia0_utt1"``-style keys), e.g. to convert
features you extracted yourself or MELD's released feature pickles after loading them with code you trust.

Every problem is a :class:`MeldFormatError` (a ``ValueError``) naming the file and, for a CSV row, the
line: ``train_sent_emo.csv:17: Emotion 'happy' is not one of ['neutral', 'joy', ...]``.
"""
from __future__ import annotations

import csv
import functools
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lumo_hydra.errors import LumoValueError

__all__ = [
    "EMOTIONS", "SENTIMENTS", "COLUMNS", "SPLIT_FILES", "FEATURE_MODALITIES", "MeldFormatError", "MeldSplit",
    "read_csv", "read_features", "load_split", "write_features", "feature_path",
]

#: MELD's seven emotion labels; the class index of a label is its position here
EMOTIONS = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
SENTIMENTS = ("neutral", "positive", "negative")
COLUMNS = (
    "Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
    "Season", "Episode", "StartTime", "EndTime",
)
SPLIT_FILES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
FEATURE_MODALITIES = ("audio", "visual")
MODALITIES = ("text", *FEATURE_MODALITIES)
_INT = re.compile(r"\s*\d+\s*\Z")


class MeldFormatError(LumoValueError):
    """A MELD file is missing or malformed; ``path`` is the file, ``line`` the CSV line (or ``None``)."""

    def __init__(self, path: str | os.PathLike, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> Any:  # picklable with its message (errors travel from launcher workers)
        return (type(self), (self.path, self.line, self.problem))


@dataclass
class MeldSplit:
    """One split as columns, rows sorted by ``(dialogue_ids, utterance_ids)``.

    ``features`` maps a modality (``audio``, ``visual``) to a float32 array ``(N, D)`` aligned with the
    rows; only the modalities asked for are loaded. ``lines`` are the CSV line numbers of the rows.
    """

    name: str
    path: str
    utterances: list[str]
    speakers: list[str]
    emotions: np.ndarray
    sentiments: np.ndarray
    dialogue_ids: np.ndarray
    utterance_ids: np.ndarray
    lines: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, key: str) -> Any:
        """Columns by name (what ``"@meld.audio"`` in a dataset spec reads)."""
        if key in FEATURE_MODALITIES:
            return self.feature(key)
        if key in ("utterances", "speakers", "emotions", "sentiments", "dialogue_ids", "utterance_ids", "lines"):
            return getattr(self, key)
        raise KeyError(f"MeldSplit has no column {key!r}; columns: utterances, speakers, emotions, sentiments, "
                       f"dialogue_ids, utterance_ids, lines, {', '.join(FEATURE_MODALITIES)}")

    @property
    def audio(self) -> np.ndarray:
        return self.feature("audio")

    @property
    def visual(self) -> np.ndarray:
        return self.feature("visual")

    def feature(self, modality: str) -> np.ndarray:
        if modality not in self.features:
            raise LumoValueError(
                f"modality {modality!r} of split {self.name!r} was not loaded (loaded: {sorted(self.features) or 'none'}); "
                f"add it to the node's modalities, e.g. dataset.nodes.meld.modalities=[text,{modality}]"
            )
        return self.features[modality]

    def dialogues(self) -> dict[int, np.ndarray]:
        """``Dialogue_ID -> row indices`` in utterance order."""
        out: dict[int, list[int]] = {}
        for i, d in enumerate(self.dialogue_ids.tolist()):
            out.setdefault(d, []).append(i)
        return {d: np.asarray(v, dtype=np.int64) for d, v in out.items()}


# ---------------------------------------------------------------- CSV
def _label(path: Path, line: int, column: str, value: str, allowed: Sequence[str]) -> int:
    v = value.strip().lower()
    if v not in allowed:
        raise MeldFormatError(path, line, f"{column} {value!r} is not one of {list(allowed)}")
    return allowed.index(v)


def _int(path: Path, line: int, column: str, value: str) -> int:
    if not _INT.match(value):
        raise MeldFormatError(path, line, f"{column} {value!r} is not a non-negative integer")
    return int(value)


def _header(path: Path, header: list[str] | None) -> dict[str, int]:
    if header is None:
        raise MeldFormatError(path, 1, f"the file is empty; expected the header {', '.join(COLUMNS)}")
    names = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise MeldFormatError(path, 1, f"missing column(s) {missing} in the header {names}; MELD's columns: {list(COLUMNS)}")
    return {c: names.index(c) for c in COLUMNS}


def read_csv(path: str | os.PathLike, encoding: str = "utf-8") -> dict[str, Any]:
    """Parse and check one MELD CSV file; returns its columns (rows in file order) and their line numbers."""
    path = Path(path)
    if not path.is_file():
        raise MeldFormatError(path, None, "file not found; a MELD root holds " + ", ".join(SPLIT_FILES.values()))
    cols: dict[str, list] = {k: [] for k in ("utterances", "speakers", "emotions", "sentiments", "dialogue_ids",
                                              "utterance_ids", "seasons", "episodes", "lines")}
    seen: dict[tuple[int, int], int] = {}
    with open(path, newline="", encoding=encoding) as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            idx = _header(path, header)
            width = len(header or ())
            start = reader.line_num + 1
            for row in reader:
                line, start = start, reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # a blank line
                _check_row(path, line, row, width, idx, seen, cols)
        except csv.Error as e:
            raise MeldFormatError(path, reader.line_num, f"not valid CSV: {e}") from e
        except UnicodeDecodeError as e:
            raise MeldFormatError(path, reader.line_num + 1, f"not {encoding} text ({e.reason}); set the loader's encoding") from e
    if not cols["lines"]:
        raise MeldFormatError(path, None, "no utterances (only a header)")
    return cols


def _check_row(path: Path, line: int, row: list[str], width: int, idx: dict[str, int],
               seen: dict[tuple[int, int], int], cols: dict[str, list]) -> None:
    if len(row) != width:
        raise MeldFormatError(path, line, f"expected {width} fields (like the header), got {len(row)}: {row[:4]}...")
    utterance = row[idx["Utterance"]].strip()
    if not utterance:
        raise MeldFormatError(path, line, "Utterance is empty")
    dia = _int(path, line, "Dialogue_ID", row[idx["Dialogue_ID"]])
    utt = _int(path, line, "Utterance_ID", row[idx["Utterance_ID"]])
    if (dia, utt) in seen:
        raise MeldFormatError(path, line, f"duplicate utterance Dialogue_ID={dia}, Utterance_ID={utt} (first on line {seen[dia, utt]})")
    seen[dia, utt] = line
    cols["utterances"].append(utterance)
    cols["speakers"].append(row[idx["Speaker"]].strip())
    cols["emotions"].append(_label(path, line, "Emotion", row[idx["Emotion"]], EMOTIONS))
    cols["sentiments"].append(_label(path, line, "Sentiment", row[idx["Sentiment"]], SENTIMENTS))
    cols["dialogue_ids"].append(dia)
    cols["utterance_ids"].append(utt)
    cols["seasons"].append(_int(path, line, "Season", row[idx["Season"]]))
    cols["episodes"].append(_int(path, line, "Episode", row[idx["Episode"]]))
    cols["lines"].append(line)


# ---------------------------------------------------------------- features
def feature_path(root: str | os.PathLike, split: str, modality: str) -> Path:
    """Where the ``modality`` features of ``split`` live: ``<root>/features/<split>_<modality>.npz``."""
    return Path(root) / "features" / f"{split}_{modality}.npz"


def read_features(path: str | os.PathLike, dialogue_ids: np.ndarray, utterance_ids: np.ndarray,
                  lines: np.ndarray | None = None, missing: str = "error", csv_name: str = "the CSV") -> np.ndarray:
    """The rows of the feature file ``path`` for the given utterances, as float32 ``(N, D)``.

    ``missing='error'`` (default): an utterance without a row is an error naming it; ``'zeros'``: a zero vector.
    """
    path = Path(path)
    if missing not in ("error", "zeros"):
        raise LumoValueError(f"missing_features: invalid value {missing!r}; allowed: ['error', 'zeros']")
    if not path.is_file():
        raise MeldFormatError(path, None, "feature file not found; expected an .npz with arrays 'ids' (N, 2) and "
                              "'features' (N, D) (see erc/meld.py), or leave this modality out (dataset=meld_text_only)")
    try:
        with np.load(path, allow_pickle=False) as z:
            ids, feats = np.asarray(z["ids"]), np.asarray(z["features"])
    except (KeyError, ValueError, OSError) as e:
        raise MeldFormatError(path, None, f"not a feature archive with arrays 'ids' and 'features': {e}") from e
    if ids.ndim != 2 or ids.shape[1] != 2 or feats.ndim != 2 or len(ids) != len(feats):
        raise MeldFormatError(path, None, f"'ids' must be (N, 2) and 'features' (N, D); got {ids.shape} and {feats.shape}")
    if not np.issubdtype(ids.dtype, np.integer) or not np.issubdtype(feats.dtype, np.number):
        raise MeldFormatError(path, None, f"'ids' must be integers and 'features' numbers; got {ids.dtype} and {feats.dtype}")
    if not np.isfinite(feats).all():
        bad = int(np.flatnonzero(~np.isfinite(feats).all(axis=1))[0])
        raise MeldFormatError(path, None, f"row {bad} (Dialogue_ID={ids[bad, 0]}, Utterance_ID={ids[bad, 1]}) is not finite")
    where = {(int(d), int(u)): i for i, (d, u) in enumerate(ids.tolist())}
    out = np.zeros((len(dialogue_ids), feats.shape[1]), dtype=np.float32)
    for j, key in enumerate(zip(dialogue_ids.tolist(), utterance_ids.tolist())):
        i = where.get(key)
        if i is not None:
            out[j] = feats[i]
        elif missing == "error":
            on = f" ({csv_name} line {int(lines[j])})" if lines is not None else ""
            raise MeldFormatError(path, None, f"no features for Dialogue_ID={key[0]}, Utterance_ID={key[1]}{on}; "
                                  "add them, or fill gaps with zeros: dataset.nodes.meld.missing_features=zeros")
    return out


def write_features(path: str | os.PathLike, vectors: Mapping[Any, Iterable[float]]) -> Path:
    """Write a feature file from ``{(dia, utt): vector}`` or ``{"dia<D>_utt<U>": vector}`` (MELD's key style)."""
    ids, rows = [], []
    for key, vec in vectors.items():
        if isinstance(key, str):
            m = re.fullmatch(r"dia(\d+)_utt(\d+)", key)
            if m is None:
                raise LumoValueError(f"feature key {key!r}: expected (dia, utt) or 'dia<D>_utt<U>'")
            key = (int(m.group(1)), int(m.group(2)))
        ids.append(tuple(int(k) for k in key))
        rows.append(np.asarray(list(vec), dtype=np.float32))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, ids=np.asarray(ids, dtype=np.int64).reshape(-1, 2), features=np.stack(rows) if rows else np.zeros((0, 0), np.float32))
    return path


# ---------------------------------------------------------------- one split
def _check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    mods = tuple(modalities)
    bad = [m for m in mods if m not in MODALITIES]
    if bad:
        raise LumoValueError(f"modalities: invalid value(s) {bad}; allowed: {list(MODALITIES)}")
    return mods


def load_split(root: str | os.PathLike, split: str = "train", modalities: Sequence[str] = MODALITIES,
               missing_features: str = "error", encoding: str = "utf-8") -> MeldSplit:
    """Load split ``train|dev|test`` of the MELD-layout folder ``root`` (the audio/visual features named in
    ``modalities`` only). Cached per process: the vocabulary and the dataset specs share one parse."""
    if split not in SPLIT_FILES:
        raise LumoValueError(f"split: invalid value {split!r}; allowed: {list(SPLIT_FILES)}")
    mods = _check_modalities(modalities)
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise MeldFormatError(root, None, "data.root is not a folder; point data.root at a MELD-layout folder "
                              "(or leave it unset for the synthetic set, see make_data.py)")
    csv_path = root / SPLIT_FILES[split]
    stamps = tuple(_stamp(p) for p in [csv_path, *(feature_path(root, split, m) for m in mods if m != "text")])
    return _load_cached(str(root), split, mods, missing_features, encoding, stamps)


def _stamp(path: Path) -> tuple[str, float, int]:
    try:
        st = path.stat()
        return (str(path), st.st_mtime, st.st_size)
    except OSError:
        return (str(path), -1.0, -1)


@functools.lru_cache(maxsize=16)
def _load_cached(root: str, split: str, mods: tuple[str, ...], missing: str, encoding: str, stamps: tuple) -> MeldSplit:
    csv_path = Path(root) / SPLIT_FILES[split]
    cols = read_csv(csv_path, encoding=encoding)
    order = np.lexsort((np.asarray(cols["utterance_ids"]), np.asarray(cols["dialogue_ids"])))
    pick = order.tolist()
    table = MeldSplit(
        name=split, path=str(csv_path),
        utterances=[cols["utterances"][i] for i in pick],
        speakers=[cols["speakers"][i] for i in pick],
        emotions=np.asarray(cols["emotions"], dtype=np.int64)[order],
        sentiments=np.asarray(cols["sentiments"], dtype=np.int64)[order],
        dialogue_ids=np.asarray(cols["dialogue_ids"], dtype=np.int64)[order],
        utterance_ids=np.asarray(cols["utterance_ids"], dtype=np.int64)[order],
        lines=np.asarray(cols["lines"], dtype=np.int64)[order],
    )
    for m in mods:
        if m != "text":
            table.features[m] = read_features(feature_path(root, split, m), table.dialogue_ids, table.utterance_ids,
                                              table.lines, missing=missing, csv_name=csv_path.name)
    return table
