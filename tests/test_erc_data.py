"""The ERC template's data side (examples/emotion_recognition): the MELD loader on a generated MELD-layout
folder (malformed files give a MeldFormatError naming the file and line), the dataset specs composed by
Hydra and built, the collation of variable-length dialogues, and the models on a real batch."""
from __future__ import annotations

import csv
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

APP_DIR = Path(__file__).resolve().parents[1] / "examples" / "emotion_recognition"
sys.path.insert(0, str(APP_DIR))
from erc import data as erc_data  # noqa: E402
from erc import engine, models  # noqa: E402
from erc.meld import COLUMNS, EMOTIONS, MeldFormatError, feature_path, load_split, read_csv  # noqa: E402
from erc.synthetic import generate  # noqa: E402

sys.path.remove(str(APP_DIR))

TINY = {"train": 30, "dev": 6, "test": 10}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("erc") / "meld", dialogues=TINY, seed=1)


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _write(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


# ---------------------------------------------------------------- the generated layout and the loader
def test_generated_folder_has_meld_layout_and_loads(root: Path) -> None:
    for split in ("train", "dev", "test"):
        rows = _rows(root / f"{split}_sent_emo.csv")
        assert tuple(rows[0]) == COLUMNS
        s = load_split(root, split)
        assert len(s) == len(rows) - 1
        assert s.audio.shape == (len(s), 16) and s.visual.shape == (len(s), 12)
        assert s.audio.dtype == np.float32
        assert set(np.unique(s.emotions)) <= set(range(len(EMOTIONS)))
        assert len(np.unique(s.dialogue_ids)) == TINY[split]
        # rows sorted by dialogue, then utterance; the CSV line of every row is kept
        key = s.dialogue_ids * 1000 + s.utterance_ids
        assert (np.diff(key) > 0).all()
        first = rows[1]
        i = int(np.flatnonzero((s.dialogue_ids == int(first[5])) & (s.utterance_ids == int(first[6])))[0])
        assert s.utterances[i] == first[1] and s.speakers[i] == first[2] and EMOTIONS[s.emotions[i]] == first[3]
        assert s.lines[i] == 2
    assert (root / "synthetic.json").is_file()
    # features are joined on (Dialogue_ID, Utterance_ID), whatever the order of the rows in the file
    with np.load(feature_path(root, "train", "audio")) as z:
        ids, feats = z["ids"], z["features"]
    s = load_split(root, "train")
    j = 7
    k = int(np.flatnonzero((s.dialogue_ids == ids[j, 0]) & (s.utterance_ids == ids[j, 1]))[0])
    np.testing.assert_array_equal(s.audio[k], feats[j])


def test_generator_replaces_only_synthetic_sets(root: Path, tmp_path: Path) -> None:
    mine = tmp_path / "MELD"
    mine.mkdir()
    (mine / "train_sent_emo.csv").write_text("Sr No.,Utterance\n")
    with pytest.raises(ValueError, match="is not a synthetic set .* refusing to replace it"):
        generate(mine, dialogues={"train": 2, "dev": 1, "test": 1})
    assert (mine / "train_sent_emo.csv").read_text() == "Sr No.,Utterance\n"
    out = generate(tmp_path / "syn", dialogues={"train": 2, "dev": 1, "test": 1})
    first = (out / "train_sent_emo.csv").read_text()
    generate(out, replace=False, dialogues={"train": 3, "dev": 1, "test": 1}, seed=9)  # kept: it exists
    assert (out / "train_sent_emo.csv").read_text() == first
    generate(out, dialogues={"train": 3, "dev": 1, "test": 1}, seed=9)  # replaced
    assert (out / "train_sent_emo.csv").read_text() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MELD", "syn"]  # no temporary folder left behind


def test_the_structure_is_learnable(root: Path) -> None:
    """The generator's promise, checked on its labels: emotions persist within a speaker's turns."""
    s = load_split(generate(root.parent / "big", dialogues={"train": 200, "dev": 2, "test": 2}), "train")
    same_dia = s.dialogue_ids[1:] == s.dialogue_ids[:-1]
    same_spk = np.asarray(s.speakers[1:]) == np.asarray(s.speakers[:-1])
    keep = (s.emotions[1:] == s.emotions[:-1])
    assert keep[same_dia & same_spk].mean() > 0.7  # persistence 0.75 plus the prior's chance
    assert keep[~same_dia].mean() < 0.35           # across dialogues: chance only


def test_features_in_any_row_order_and_missing_rows(root: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "meld"
    shutil.copytree(root, copy)
    path = feature_path(copy, "dev", "visual")
    with np.load(path) as z:
        ids, feats = z["ids"], z["features"]
    perm = np.random.default_rng(0).permutation(len(ids))
    np.savez(path, ids=ids[perm], features=feats[perm])
    np.testing.assert_array_equal(load_split(copy, "dev").visual, load_split(root, "dev").visual)
    np.savez(path, ids=ids[1:], features=feats[1:])  # the first utterance has no visual features
    with pytest.raises(MeldFormatError) as e:
        load_split(copy, "dev")
    msg = str(e.value)
    assert str(path) in msg and f"Dialogue_ID={ids[0, 0]}, Utterance_ID={ids[0, 1]}" in msg
    assert "dev_sent_emo.csv line" in msg and "missing_features=zeros" in msg
    filled = load_split(copy, "dev", missing_features="zeros")
    assert not filled.visual[0].any() and filled.visual[1:].any()
    path.unlink()
    with pytest.raises(MeldFormatError, match="dev_visual.npz: feature file not found.*meld_text_only"):
        load_split(copy, "dev")
    assert len(load_split(copy, "dev", modalities=["text", "audio"])) == len(filled)  # what is not asked is not read
    with pytest.raises(ValueError, match=r"modalities: invalid value\(s\) \['video'\]"):
        load_split(copy, "dev", modalities=["text", "video"])


@pytest.mark.parametrize("edit, problem", [
    (lambda rows: rows[3].pop(), "expected 11 fields (like the header), got 10"),
    (lambda rows: rows[3].__setitem__(3, "happy"), "Emotion 'happy' is not one of ['neutral', 'joy'"),
    (lambda rows: rows[3].__setitem__(4, "meh"), "Sentiment 'meh' is not one of"),
    (lambda rows: rows[3].__setitem__(5, "x1"), "Dialogue_ID 'x1' is not a non-negative integer"),
    (lambda rows: rows[3].__setitem__(6, "-2"), "Utterance_ID '-2' is not a non-negative integer"),
    (lambda rows: rows[3].__setitem__(1, "  "), "Utterance is empty"),
    (lambda rows: rows.__setitem__(3, list(rows[2])), "duplicate utterance Dialogue_ID="),
])
def test_malformed_rows_name_the_file_and_line(root: Path, tmp_path: Path, edit: object, problem: str) -> None:
    rows = _rows(root / "train_sent_emo.csv")
    rows[1][1] = "A quoted utterance,\nwritten over two lines"  # a valid multi-line field: lines still counted right
    edit(rows)  # type: ignore[operator]
    path = _write(tmp_path / "train_sent_emo.csv", rows)
    with pytest.raises(MeldFormatError) as e:
        read_csv(path)
    # rows[3] is the fourth CSV record; the second one spans two lines, so it starts on line 5
    assert e.value.path == str(path) and e.value.line == 5, str(e.value)
    assert str(e.value).startswith(f"{path}:5: ") and problem in str(e.value)
    if "duplicate" in problem:
        assert "(first on line 4)" in str(e.value)
    assert isinstance(e.value, ValueError)
    again = pickle.loads(pickle.dumps(e.value))
    assert str(again) == str(e.value) and again.line == 5


def test_malformed_files(root: Path, tmp_path: Path) -> None:
    rows = _rows(root / "train_sent_emo.csv")
    path = _write(tmp_path / "a" / "train_sent_emo.csv", [[c for c in rows[0] if c != "Speaker"]] + [r[:2] + r[3:] for r in rows[1:]])
    with pytest.raises(MeldFormatError, match=r"train_sent_emo.csv:1: missing column\(s\) \['Speaker'\]"):
        read_csv(path)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "train_sent_emo.csv").write_text("")
    with pytest.raises(MeldFormatError, match="train_sent_emo.csv:1: the file is empty"):
        read_csv(tmp_path / "b" / "train_sent_emo.csv")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "train_sent_emo.csv").write_bytes(b",".join(c.encode() for c in COLUMNS) + b"\n1,caf\xe9\n")
    with pytest.raises(MeldFormatError, match=r"train_sent_emo.csv:\d: not utf-8 text"):
        read_csv(tmp_path / "c" / "train_sent_emo.csv")
    with pytest.raises(MeldFormatError, match="train_sent_emo.csv: file not found"):
        load_split(tmp_path, "train")
    with pytest.raises(ValueError, match=r"split: invalid value 'val'; allowed: \['train', 'dev', 'test'\]"):
        load_split(root, "val")
    # extra columns and another column order are fine (only MELD's columns are read)
    order = [10, 9, 0, 2, 1, 3, 4, 5, 6, 7, 8]
    path = _write(tmp_path / "d" / "train_sent_emo.csv", [[r[i] for i in order] + ["x"] for r in rows[:1]] +
                  [[r[i] for i in order] + ["1"] for r in rows[1:]])
    assert read_csv(path)["utterances"] == read_csv(root / "train_sent_emo.csv")["utterances"]


def test_context_windows(root: Path) -> None:
    s = load_split(root, "train")
    w = erc_data.context_windows(s, window=2)
    for i in range(len(s)):
        prev = [j for j in range(max(0, i - 2), i) if s.dialogue_ids[j] == s.dialogue_ids[i]]
        assert list(w[i]) == prev
    assert all(len(x) == 0 for x in erc_data.context_windows(s, window=0))
    with pytest.raises(ValueError, match="window: invalid value -1"):
        erc_data.context_windows(s, window=-1)


# ---------------------------------------------------------------- the specs, through Hydra's compose
COMPOSED = {
    "meld": ("dataset=meld", "dataset@test_dataset=meld", "context_window=3"),
    "meld_text_only": ("dataset=meld_text_only", "dataset@test_dataset=meld_text_only", "context_window=3"),
    "meld_no_context": ("dataset=meld_no_context", "dataset@test_dataset=meld_no_context", "context_window=3"),
    "context_text_audio": ("model=context_gru", "modality=text+audio"),
    "text_only": ("model=text_only",),
    "text_only_text_audio": ("model=text_only", "modality=text+audio"),
    "window4": ("context_window=4",),
}


@pytest.fixture(scope="module")
def composed(root: Path) -> Iterator[dict]:
    """The template's config composed by Hydra (one initialize, several override sets)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.singleton import Singleton

    saved = Singleton.get_state()  # Hydra's singletons (ConfigStore, HydraConfig, JobRuntime...) as they were
    sys.path.insert(0, str(APP_DIR))
    try:
        import erc.params  # noqa: F401  (registers erc_schema)
    finally:
        sys.path.remove(str(APP_DIR))
    try:
        with initialize_config_dir(config_dir=str(APP_DIR / "conf"), version_base="1.3"):
            yield {k: compose("config", overrides=[f"data.root={root}", *v]) for k, v in COMPOSED.items()}
    finally:
        # leave Hydra's singletons as they were: later tests run Hydra apps in this process and pickle the
        # ConfigStore into launcher workers, where the template's ``erc`` package cannot be imported
        Singleton.set_state(saved)
        sys.modules.pop("erc.params", None)


@pytest.fixture(scope="module")
def full_set(composed: dict) -> object:
    from hydra.utils import instantiate

    return instantiate(composed["window4"].dataset)


@pytest.mark.parametrize("dataset, outputs", [
    ("meld", ["tokens", "audio", "visual", "speaker", "ctx_tokens", "ctx_audio", "ctx_visual", "ctx_speaker", "ys"]),
    ("meld_text_only", ["tokens", "speaker", "ctx_tokens", "ctx_speaker", "ys"]),
    ("meld_no_context", ["tokens", "audio", "visual", "ys"]),
])
def test_specs_compose_and_build(root: Path, composed: dict, dataset: str, outputs: list[str]) -> None:
    from hydra.utils import instantiate

    cfg = composed[dataset]
    train_set, test_set = instantiate(cfg.dataset), instantiate(cfg.test_dataset)
    assert train_set.output_names == outputs
    assert len(train_set) == len(load_split(root, "train")) and len(test_set) == len(load_split(root, "test"))
    item = train_set[3]
    assert item["tokens"].dtype == np.int64 and item["tokens"].min() >= 1
    assert 0 <= int(item["ys"]) < len(EMOTIONS)
    if "ctx_tokens" in outputs:
        assert all(len(train_set[i]["ctx_tokens"]) <= 3 for i in range(len(train_set)))
        assert len(train_set[0]["ctx_tokens"]) == 0  # the first utterance of the first dialogue
        # shared nodes: the context gathers from the very token list the tokens input reads
        assert train_set.get_output_transform("ctx_tokens").items is train_set.get_source("text")
    if "audio" in outputs and "ctx_audio" in outputs:
        assert train_set.get_output_transform("ctx_audio").items is train_set.get_source("audio")
    vocab = lambda ds: ds.get_source("text").vocab if dataset != "meld_no_context" else ds.get_input_transform("text").vocab  # noqa: E731
    assert vocab(train_set) is vocab(test_set)  # one vocabulary, from the training split, for every split


def test_modality_and_model_groups_compose(composed: dict) -> None:
    cfg = composed["context_text_audio"]
    assert list(cfg.model.modalities) == ["text", "audio"] and cfg.modality.name == "text+audio"
    assert cfg.model._target_ == "erc.models.ContextGRU"
    cfg = composed["text_only"]  # text_only sets the modality group itself
    assert cfg.modality.name == "text" and list(cfg.model.modalities) == ["text"]
    cfg = composed["text_only_text_audio"]  # the command line wins over the model's choice: refused in the job
    with pytest.raises(ValueError, match=r"model=text_only reads modalities \['text'\], but modality=text\+audio"):
        engine.check_modality(list(cfg.model.modalities), cfg.modality.name, list(cfg.modality.use), "text_only")


# ---------------------------------------------------------------- collation and models
def test_collate_pads_tokens_and_context_windows(full_set: object) -> None:
    ds: Any = full_set
    items = [ds[i] for i in range(12)]
    b = erc_data.collate(items)
    n_ctx = [len(it["ctx_tokens"]) for it in items]
    k = max(n_ctx)
    assert b["tokens"].shape[0] == 12 and b["tokens"].shape[1] == max(len(it["tokens"]) for it in items)
    assert b["ctx_tokens"].shape[:2] == (12, k) and b["ctx_audio"].shape == (12, k, 16)
    assert b["ctx_mask"].sum(1).tolist() == n_ctx
    assert b["audio"].shape == (12, 16) and b["ys"].dtype.is_floating_point is False
    i = n_ctx.index(0)
    assert not b["ctx_audio"][i].any() and not b["ctx_tokens"][i].any()  # padding only
    one = erc_data.collate([ds[0]])  # a window of no utterance at all
    assert one["ctx_mask"].shape == (1, 0) and one["ctx_audio"].shape == (1, 0, 16)


def test_every_model_on_a_batch(composed: dict, full_set: object) -> None:
    import torch
    from hydra.utils import instantiate

    ds: Any = full_set
    b = erc_data.collate([ds[i] for i in range(9)])
    vocab = len(ds.get_source("text").vocab)
    for cls, mods in [(models.EarlyFusion, ["text"]), (models.EarlyFusion, ["audio"]), (models.LateFusion, ["text", "visual"]),
                      (models.EarlyFusion, ["text", "audio", "visual"]), (models.ContextGRU, ["text", "audio", "visual"])]:
        m = cls(modalities=mods, vocab_size=vocab, audio_dim=16, visual_dim=12)
        assert set(m.inputs()) <= set(b)
        out = m(b)
        assert out.shape == (9, 7) and torch.isfinite(out).all()
        out.sum().backward()
    only_first = erc_data.collate([ds[0]])
    assert models.ContextGRU(vocab_size=vocab, audio_dim=16, visual_dim=12)(only_first).shape == (1, 7)
    text = instantiate(composed["meld_text_only"].dataset)
    with pytest.raises(ValueError, match=r"reads \['audio', 'ctx_audio'\].*dataset=meld_text_only.*use dataset=meld"):
        engine.check_inputs(models.ContextGRU(modalities=["text", "audio"], vocab_size=vocab, audio_dim=16),
                            text, "meld_text_only")
    with pytest.raises(ValueError, match="model.modalities: invalid value"):
        models.EarlyFusion(modalities=["smell"])
