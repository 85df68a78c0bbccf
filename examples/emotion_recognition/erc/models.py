"""The models, one class per option of the ``model`` config group (``conf/model/*.yaml``).

Every model reads the modalities it was built for (``modalities``: a subset of ``text``, ``audio``,
``visual``) from a collated batch (``erc.data.collate``) and returns logits ``(B, num_classes)``:

- :class:`EarlyFusion`: encode each modality, concatenate, one classifier (``text_only`` and ``audio_only``
  are this model on one modality);
- :class:`LateFusion`: one classifier per modality; their log-probabilities are averaged with learned weights;
- :class:`ContextGRU`: the early-fusion encoding of each utterance of the context window and of the current
  one, plus a same-speaker flag, read in order by a GRU (dialogue context in the spirit of DialogueRNN);
  the classifier sees the GRU's last state and the current utterance.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lumo_hydra.errors import LumoValueError

__all__ = ["Encoders", "EarlyFusion", "LateFusion", "ContextGRU", "MODALITIES"]

MODALITIES = ("text", "audio", "visual")


def _check_modalities(modalities: Sequence[str]) -> list[str]:
    mods = list(modalities)
    bad = [m for m in mods if m not in MODALITIES]
    if not mods or bad or len(set(mods)) != len(mods):
        raise LumoValueError(f"model.modalities: invalid value {mods!r}; allowed: a non-empty subset of {list(MODALITIES)}")
    return mods


class TextEncoder(nn.Module):
    """Word embeddings summed over the non-padding tokens (a bag of words), then a linear layer."""

    def __init__(self, vocab_size: int, emb_dim: int, out_dim: int, dropout: float) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        nn.init.normal_(self.emb.weight, std=0.1)  # small: a sum of N(0, 1) vectors would drown the one cue word
        with torch.no_grad():
            self.emb.weight[0].zero_()
        self.proj = nn.Sequential(nn.Dropout(dropout), nn.Linear(emb_dim, out_dim), nn.ReLU())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # (N, L) -> (N, out_dim)
        mask = (tokens != 0).unsqueeze(-1)
        e = self.emb(tokens)
        return self.proj((e * mask).sum(1))  # a bag of words: one cue word counts however long the utterance


class Encoders(nn.Module):
    """One encoder per modality: ``encode(batch, prefix)`` returns ``{modality: (..., hidden)}``.

    ``prefix='ctx_'`` encodes the context window (``ctx_tokens`` ``(B, K, L)``, ``ctx_audio`` ``(B, K, D)``).
    """

    def __init__(self, modalities: Sequence[str], hidden: int, vocab_size: int, audio_dim: int, visual_dim: int,
                 emb_dim: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        self.modalities = _check_modalities(modalities)
        enc: dict[str, nn.Module] = {}
        for m in self.modalities:
            if m == "text":
                enc[m] = TextEncoder(vocab_size, emb_dim, hidden, dropout)
            else:
                dim = audio_dim if m == "audio" else visual_dim
                enc[m] = nn.Sequential(nn.LayerNorm(dim), nn.Dropout(dropout), nn.Linear(dim, hidden), nn.ReLU())
        self.enc = nn.ModuleDict(enc)
        self.hidden = hidden

    def encode(self, batch: dict[str, Any], prefix: str = "") -> dict[str, torch.Tensor]:
        out = {}
        for m in self.modalities:
            x = batch[prefix + ("tokens" if m == "text" else m)]
            lead = x.shape[:-1]  # (B,) or (B, K)
            flat = x.reshape(-1, x.shape[-1])
            out[m] = self.enc[m](flat).reshape(*lead, self.hidden)
        return out


class _Model(nn.Module):
    uses_context = False

    def __init__(self, name: str, modalities: Sequence[str], num_classes: int, hidden: int, vocab_size: int,
                 audio_dim: int, visual_dim: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.name = name
        self.modalities = _check_modalities(modalities)
        self.encoders = Encoders(self.modalities, hidden, vocab_size, audio_dim, visual_dim, emb_dim, dropout)
        self.num_classes = num_classes

    def inputs(self) -> list[str]:
        """The batch keys (dataset outputs) this model reads."""
        keys = ["tokens" if m == "text" else m for m in self.modalities]
        if self.uses_context:
            keys += ["speaker", "ctx_speaker"] + ["ctx_" + k for k in keys]
        return keys


class EarlyFusion(_Model):
    """Concatenate the modality encodings; an MLP classifies the utterance (no dialogue context)."""

    def __init__(self, name: str = "early_fusion", modalities: Sequence[str] = MODALITIES, num_classes: int = 7,
                 hidden: int = 32, vocab_size: int = 2, audio_dim: int = 1, visual_dim: int = 1,
                 emb_dim: int = 32, dropout: float = 0.1) -> None:
        super().__init__(name, modalities, num_classes, hidden, vocab_size, audio_dim, visual_dim, emb_dim, dropout)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden * len(self.modalities), hidden), nn.ReLU(),
                                  nn.Linear(hidden, num_classes))

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        z = self.encoders.encode(batch)
        return self.head(torch.cat([z[m] for m in self.modalities], dim=-1))


class LateFusion(_Model):
    """One classifier per modality; the output is the weighted mean of their log-probabilities (weights learned)."""

    def __init__(self, name: str = "late_fusion", modalities: Sequence[str] = MODALITIES, num_classes: int = 7,
                 hidden: int = 32, vocab_size: int = 2, audio_dim: int = 1, visual_dim: int = 1,
                 emb_dim: int = 32, dropout: float = 0.1) -> None:
        super().__init__(name, modalities, num_classes, hidden, vocab_size, audio_dim, visual_dim, emb_dim, dropout)
        self.heads = nn.ModuleDict({m: nn.Linear(hidden, num_classes) for m in self.modalities})
        self.weights = nn.Parameter(torch.zeros(len(self.modalities)))

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        z = self.encoders.encode(batch)
        logp = torch.stack([F.log_softmax(self.heads[m](z[m]), dim=-1) for m in self.modalities])  # (M, B, C)
        w = torch.softmax(self.weights, dim=0).view(-1, 1, 1)
        return (w * logp).sum(0) * len(self.modalities)  # a sum of weighted log-probabilities: logits


class ContextGRU(_Model):
    """A GRU over the fused encodings of the context window and the current utterance (oldest first).

    Each step's input is the early-fusion vector of one utterance and a flag: is its speaker the current
    utterance's speaker. The classifier reads the GRU's last state with the current utterance's vector.
    """

    uses_context = True

    def __init__(self, name: str = "context_gru", modalities: Sequence[str] = MODALITIES, num_classes: int = 7,
                 hidden: int = 32, vocab_size: int = 2, audio_dim: int = 1, visual_dim: int = 1,
                 emb_dim: int = 32, dropout: float = 0.1, gru_hidden: int = 32) -> None:
        super().__init__(name, modalities, num_classes, hidden, vocab_size, audio_dim, visual_dim, emb_dim, dropout)
        fused = hidden * len(self.modalities)
        self.fuse = nn.Sequential(nn.Linear(fused, hidden), nn.ReLU())
        self.gru = nn.GRU(hidden + 1, gru_hidden, batch_first=True)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(gru_hidden + hidden, hidden), nn.ReLU(),
                                  nn.Linear(hidden, num_classes))

    def _fused(self, batch: dict[str, Any], prefix: str) -> torch.Tensor:
        z = self.encoders.encode(batch, prefix)
        return self.fuse(torch.cat([z[m] for m in self.modalities], dim=-1))

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        cur = self._fused(batch, "")  # (B, H)
        b = cur.shape[0]
        mask = batch["ctx_mask"]  # (B, K)
        k = mask.shape[1]
        lengths = mask.sum(1) + 1  # the context and the current utterance
        steps = torch.zeros(b, k + 1, cur.shape[1] + 1)
        if k:
            ctx = self._fused(batch, "ctx_")  # (B, K, H)
            same = (batch["ctx_speaker"] == batch["speaker"].unsqueeze(1)).float().unsqueeze(-1)
            steps[:, :k] = torch.cat([ctx, same], dim=-1) * mask.unsqueeze(-1)
        rows = torch.arange(b)
        current = torch.cat([cur, torch.ones(b, 1)], dim=-1)
        steps = steps.index_put((rows, lengths - 1), current)  # the current utterance right after its context
        # The GRU reads left to right, so its output at the current utterance's step never sees the padding
        # after it: no packing needed.
        states, _ = self.gru(steps)
        return self.head(torch.cat([states[rows, lengths - 1], cur], dim=-1))
