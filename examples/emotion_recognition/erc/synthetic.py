"""A small synthetic data set in MELD's exact layout, with a learnable structure (``make_data.py`` calls it).

It is **not MELD** and its numbers say nothing about MELD; it exists so that the template runs anywhere in
seconds and so that context modelling and fusion have something real to find. How an utterance is made:

1. **Dialogues** of 4-12 utterances among 2-3 of six speakers; the next speaker is the same one with
   probability 0.25, else another participant.
2. **Emotion** (MELD's 7 labels): the first utterance draws from a prior (neutral 30%, ...). Later ones
   depend on the dialogue: the same speaker keeps the previous emotion with probability 0.6 (emotions
   persist); a different speaker *reacts* to it with probability 0.35 (anger -> fear, fear -> surprise,
   surprise -> joy, disgust -> anger, joy -> joy, sadness -> sadness, neutral -> neutral), takes it over
   with probability 0.2, returns to their own last emotion with probability 0.15; otherwise the prior.
   Sentiment follows the emotion (joy, surprise: positive; neutral: neutral; the rest: negative).
3. **Words**: 3-9 filler words carrying no signal; with probability ``cue_rate`` (0.5) one cue word of the
   true emotion (and then, with probability 0.2, a second), and with probability ``distractor_rate`` (0.15)
   a cue word of another emotion. So the text alone is right about half of the time, at best.
4. **Audio and visual features**: a class mean (one random vector per emotion, fixed by the seed, scaled
   by ``audio_separation`` / ``visual_separation``) plus unit Gaussian noise, ``audio_dim`` = 16 and
   ``visual_dim`` = 12 numbers per utterance; each modality alone is a weak, noisy cue.

Because the evidence of text, audio and video is independent given the emotion, fusing them helps; because
the emotion depends on the previous utterances and on who speaks, a model that reads the dialogue context
helps more. ``synthetic.json`` in the output folder records every setting and marks the folder synthetic.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .meld import COLUMNS, EMOTIONS, SPLIT_FILES, feature_path

__all__ = ["generate", "DEFAULTS", "is_synthetic"]

DEFAULTS: dict[str, Any] = {
    "dialogues": {"train": 200, "dev": 40, "test": 100},
    "seed": 0,
    "audio_dim": 16,
    "visual_dim": 12,
    "audio_separation": 0.3,
    "visual_separation": 0.25,
    "cue_rate": 0.4,
    "distractor_rate": 0.15,
    "persist": 0.75,
    "react": 0.45,
    "contagion": 0.3,
    "own_last": 0.15,
}

PRIOR = np.array([0.30, 0.18, 0.12, 0.13, 0.11, 0.07, 0.09])
REACTION = {"neutral": "neutral", "joy": "joy", "surprise": "joy", "anger": "fear", "sadness": "sadness",
            "disgust": "anger", "fear": "surprise"}
SENTIMENT = {"neutral": "neutral", "joy": "positive", "surprise": "positive", "anger": "negative",
             "sadness": "negative", "disgust": "negative", "fear": "negative"}
_REACT = [EMOTIONS.index(REACTION[e]) for e in EMOTIONS]
SPEAKERS = ("Ross", "Rachel", "Monica", "Chandler", "Joey", "Phoebe")
CUES = {
    "neutral": ("okay", "sure", "alright", "fine", "right", "yes"),
    "joy": ("great", "awesome", "love", "wonderful", "yay", "fantastic"),
    "surprise": ("whoa", "wow", "really", "seriously", "unbelievable", "omg"),
    "anger": ("stop", "hate", "shut", "damn", "ridiculous", "furious"),
    "sadness": ("sorry", "miss", "sad", "lonely", "cry", "hurt"),
    "disgust": ("gross", "eww", "disgusting", "yuck", "nasty", "sick"),
    "fear": ("scared", "afraid", "help", "nervous", "terrified", "worried"),
}
FILLERS = (  # words that carry no emotion
    "i", "you", "we", "it", "that", "this", "the", "a", "and", "so", "just", "like", "know", "oh", "well",
    "yeah", "um", "is", "was", "are", "do", "did", "have", "got", "go", "think", "mean", "there", "here",
    "what", "about", "with", "for", "to", "of", "in", "on", "my", "your", "me", "him", "her", "they", "he",
    "she", "can", "not", "no", "now", "then",
)


def _next_emotion(rng: np.random.Generator, s: dict, prev: int, same_speaker: bool, own_last: int | None) -> int:
    r = rng.random()
    if same_speaker:
        if r < s["persist"]:
            return prev
    elif r < s["react"]:
        return _REACT[prev]
    elif r < s["react"] + s["contagion"]:
        return prev
    elif r < s["react"] + s["contagion"] + s["own_last"] and own_last is not None:
        return own_last
    return int(rng.choice(len(EMOTIONS), p=PRIOR))


def _cue(rng: np.random.Generator, emotion: int) -> str:
    cues = CUES[EMOTIONS[emotion]]
    return cues[int(rng.integers(len(cues)))]


def _words(rng: np.random.Generator, emotion: int, cue_rate: float, distractor_rate: float) -> str:
    words = [FILLERS[i] for i in rng.integers(len(FILLERS), size=int(rng.integers(3, 10)))]
    cues: list[str] = []
    if rng.random() < cue_rate:
        cues.append(_cue(rng, emotion))
        if rng.random() < 0.2:
            cues.append(_cue(rng, emotion))
    if rng.random() < distractor_rate:
        cues.append(_cue(rng, (emotion + int(rng.integers(1, len(EMOTIONS)))) % len(EMOTIONS)))
    for w in cues:
        words.insert(int(rng.integers(0, len(words) + 1)), w)
    end = "!" if EMOTIONS[emotion] in ("joy", "anger") and rng.random() < 0.4 else ".?."[int(rng.integers(3))]
    text = " ".join(words)
    return text[0].upper() + text[1:] + end


def _dialogue(rng: np.random.Generator, s: dict) -> tuple[list[str], list[int]]:
    cast = [SPEAKERS[i] for i in rng.choice(len(SPEAKERS), size=int(rng.integers(2, 4)), replace=False)]
    speakers = [cast[int(rng.integers(len(cast)))]]
    for _ in range(int(rng.integers(4, 13)) - 1):
        others = [c for c in cast if c != speakers[-1]]
        speakers.append(speakers[-1] if rng.random() < 0.25 else others[int(rng.integers(len(others)))])
    emotions = [int(rng.choice(len(EMOTIONS), p=PRIOR))]
    last: dict[str, int] = {speakers[0]: emotions[0]}
    for t in range(1, len(speakers)):
        e = _next_emotion(rng, s, emotions[-1], speakers[t] == speakers[t - 1], last.get(speakers[t]))
        emotions.append(e)
        last[speakers[t]] = e
    return speakers, emotions


def _time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _split(rng: np.random.Generator, n_dialogues: int, s: dict, means: dict[str, np.ndarray]) -> tuple[list, dict]:
    rows, ids, feats = [], [], {m: [] for m in means}
    sr = 1
    for dia in range(n_dialogues):
        speakers, emotions = _dialogue(rng, s)
        season, episode, t = int(rng.integers(1, 11)), int(rng.integers(1, 25)), float(rng.uniform(10, 1200))
        for utt, (spk, e) in enumerate(zip(speakers, emotions)):
            dur = float(rng.uniform(0.8, 4.0))
            rows.append([sr, _words(rng, e, s["cue_rate"], s["distractor_rate"]), spk, EMOTIONS[e],
                         SENTIMENT[EMOTIONS[e]], dia, utt, season, episode, _time(t), _time(t + dur)])
            t += dur + float(rng.uniform(0.1, 1.0))
            sr += 1
            ids.append((dia, utt))
            for m, mu in means.items():
                feats[m].append(mu[e] + rng.normal(size=mu.shape[1]))
    return rows, {"ids": np.asarray(ids, dtype=np.int64), **{m: np.asarray(v, dtype=np.float32) for m, v in feats.items()}}


def generate(out: str | os.PathLike, replace: bool = True, **settings: Any) -> Path:
    """Write the synthetic set to ``out`` (created; replaced atomically if it exists) and return its path.

    ``replace=False``: when ``out`` exists by the time the set is written (another process made it, e.g. a
    parallel job of a sweep), keep that one.

    ``settings`` override :data:`DEFAULTS` (``dialogues={'train': 200, 'dev': 40, 'test': 100}``, ``seed``,
    ``audio_dim``, ``visual_dim``, ``audio_separation``, ``visual_separation``, ``cue_rate``, ``distractor_rate``).
    """
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    s = {**DEFAULTS, **settings}
    s["dialogues"] = {**DEFAULTS["dialogues"], **(settings.get("dialogues") or {})}
    rng = np.random.default_rng(s["seed"])
    means = {
        "audio": rng.normal(size=(len(EMOTIONS), s["audio_dim"])) * s["audio_separation"],
        "visual": rng.normal(size=(len(EMOTIONS), s["visual_dim"])) * s["visual_separation"],
    }
    out = Path(out)
    if out.exists() and not is_synthetic(out) and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not a synthetic set (no synthetic.json): refusing to replace it; "
                         "choose another output folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for split, fname in SPLIT_FILES.items():
            rows, arrays = _split(rng, int(s["dialogues"][split]), s, means)
            with open(tmp / fname, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(COLUMNS)
                w.writerows(rows)
            for m in means:
                path = feature_path(tmp, split, m)
                path.parent.mkdir(exist_ok=True)
                np.savez(path, ids=arrays["ids"], features=arrays[m])
        (tmp / "synthetic.json").write_text(json.dumps({"synthetic": True, "not": "MELD", "settings": s}, indent=2) + "\n")
        if out.exists() and not replace:
            shutil.rmtree(tmp, ignore_errors=True)
        elif out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "data")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.rename(tmp, out)
            except OSError:  # another process created `out` meanwhile (a non-empty folder: rename refuses)
                if replace or not (out / "synthetic.json").is_file():
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def is_synthetic(root: str | os.PathLike) -> bool:
    """Whether ``root`` was written by :func:`generate` (it holds ``synthetic.json``)."""
    return (Path(root) / "synthetic.json").is_file()
