"""Pronunciations for words outside the CMU dictionary, from g2p_en's small seq2seq model.

The checkpoint (a GRU encoder-decoder over letters, `checkpoint20.npz`) ships inside the g2p_en
wheel. We read only that file: importing the g2p_en package runs nltk downloads at import time,
which must never happen on an offline machine. Greedy decoding, at most 20 phones, as trained.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from synth.errors import SynthesisError

_GRAPHEMES = ["<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz"]
_PHONEMES = ["<pad>", "<unk>", "<s>", "</s>", "AA0", "AA1", "AA2", "AE0", "AE1", "AE2", "AH0", "AH1", "AH2",
             "AO0", "AO1", "AO2", "AW0", "AW1", "AW2", "AY0", "AY1", "AY2", "B", "CH", "D", "DH", "EH0", "EH1",
             "EH2", "ER0", "ER1", "ER2", "EY0", "EY1", "EY2", "F", "G", "HH", "IH0", "IH1", "IH2", "IY0",
             "IY1", "IY2", "JH", "K", "L", "M", "N", "NG", "OW0", "OW1", "OW2", "OY0", "OY1", "OY2", "P", "R",
             "S", "SH", "T", "TH", "UH0", "UH1", "UH2", "UW", "UW0", "UW1", "UW2", "V", "W", "Y", "Z", "ZH"]
_G2I = {g: i for i, g in enumerate(_GRAPHEMES)}
_START, _END = 2, 3


def _checkpoint_path() -> Path:
    spec = importlib.util.find_spec("g2p_en")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        raise SynthesisError("the g2p_en package is not installed (needed for English words outside CMUdict)")
    return Path(next(iter(spec.submodule_search_locations))) / "checkpoint20.npz"


class NeuralG2P:
    """Letters -> ARPAbet with the g2p_en GRU weights, in numpy."""

    def __init__(self, path: Path | None = None) -> None:
        path = path or _checkpoint_path()
        try:
            with np.load(path) as w:
                self.w = {k: w[k].astype(np.float32) for k in w.files}
        except OSError as exc:
            raise SynthesisError(f"cannot read the English G2P model: {exc}", path) from exc

    @staticmethod
    def _gru(x, h, w_ih, w_hh, b_ih, b_hh):
        gi = x @ w_ih.T + b_ih  # (1, 3H)
        gh = h @ w_hh.T + b_hh  # (1, 3H)
        hsz = h.shape[-1]
        r = 1.0 / (1.0 + np.exp(-(gi[:, :hsz] + gh[:, :hsz])))
        z = 1.0 / (1.0 + np.exp(-(gi[:, hsz:2 * hsz] + gh[:, hsz:2 * hsz])))
        n = np.tanh(gi[:, 2 * hsz:] + r * gh[:, 2 * hsz:])
        return (1.0 - z) * n + z * h  # (1, H)

    def predict(self, word: str) -> tuple[str, ...]:
        w = self.w
        ids = [_G2I.get(c, 1) for c in word.lower()] + [_G2I["</s>"]]
        h = np.zeros((1, w["enc_w_hh"].shape[1]), np.float32)  # (1, H)
        for i in ids:
            h = self._gru(w["enc_emb"][i][None], h, w["enc_w_ih"], w["enc_w_hh"], w["enc_b_ih"], w["enc_b_hh"])
        prev, out = _START, []
        for _ in range(20):
            h = self._gru(w["dec_emb"][prev][None], h, w["dec_w_ih"], w["dec_w_hh"], w["dec_b_ih"], w["dec_b_hh"])
            logits = h @ w["fc_w"].T + w["fc_b"]  # (1, n_phonemes)
            prev = int(logits.argmax())
            if prev == _END:
                break
            out.append(_PHONEMES[prev])
        return tuple(p for p in out if not p.startswith("<"))


@lru_cache(maxsize=1)
def neural_g2p() -> NeuralG2P:
    return NeuralG2P()
