"""BERT text features for the GPT: one 1024-d vector per phone.

GPT-SoVITS v2 conditions its text-to-semantic model on chinese-roberta-wwm-ext-large features of the
normalised Chinese text: the third-from-last hidden layer, one row per character (the [CLS] and
[SEP] rows dropped), each row repeated as many times as that character has phones (`word2ph`).
Runs in any other language get zeros, so the GPT learns to ignore the BERT branch for them. The
model is read from a LOCAL Hugging Face folder only; nothing is ever downloaded.
"""
from __future__ import annotations

import logging
import pickle
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError

from synth.engines.gpt_sovits.model.hf_folder import read_config
from synth.errors import SynthesisError, VoiceError

log = logging.getLogger(__name__)

# What a corrupt or truncated Hugging Face weight file raises while loading.
_LOAD_ERRORS = (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError, SafetensorError)

BERT_DIM = 1024
# hidden_states[-3]: the reference slices hidden_states[-3:-2] and concatenates (one tensor).
HIDDEN_LAYER = -3
# 512 positions minus [CLS] and [SEP].
MAX_CHARACTERS = 510
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def inspect_bert_folder(folder: Path) -> dict:
    """Check a local chinese-roberta-wwm-ext-large folder without loading weights; returns its
    config. Raises VoiceError naming the folder and the missing or wrong piece."""
    cfg, cfg_path = read_config(folder, "BERT", "chinese-roberta-wwm-ext-large", BERT_DIM)
    if cfg.get("num_hidden_layers", 0) < 2:
        raise VoiceError("BERT needs at least 2 layers (features come from hidden layer -3)", cfg_path)
    if not any((folder / n).is_file() for n in _WEIGHT_FILES):
        raise VoiceError("BERT folder has no model.safetensors or pytorch_model.bin", folder)
    if not any((folder / n).is_file() for n in _TOKENIZER_FILES):
        raise VoiceError("BERT folder has no tokenizer (tokenizer.json or vocab.txt)", folder)
    return cfg


class BertFeatures:
    """A local masked-LM BERT and its tokenizer; text + word2ph → (1024, n_phones) features."""

    def __init__(self, folder: Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        """Raises VoiceError when the folder is not a loadable BERT model with a tokenizer."""
        from transformers import (  # heavy import, only on use
            AutoModelForMaskedLM,
            AutoTokenizer,
        )

        folder = Path(folder)
        inspect_bert_folder(folder)
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            # float32 explicitly: transformers 5 keeps the file's dtype by default; the reference
            # (transformers 4) computes in float32 and halves the model only on CUDA.
            model = AutoModelForMaskedLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
        except _LOAD_ERRORS as exc:
            raise VoiceError(f"cannot load BERT model ({str(exc).strip()[:200]})", folder) from exc
        self._init_parts(model, tokenizer, device, dtype, folder)

    @classmethod
    def from_model(
        cls, model: torch.nn.Module, tokenizer: object, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> BertFeatures:
        """Wrap a masked-LM BERT and tokenizer already in memory (benchmarks with random weights)."""
        obj = cls.__new__(cls)
        obj._init_parts(model, tokenizer, device, dtype, None)
        return obj

    def _init_parts(
        self, model: torch.nn.Module, tokenizer: object, device: torch.device | str, dtype: torch.dtype, folder: Path | None
    ) -> None:
        self.folder = folder
        self.device = torch.device(device)
        self.tokenizer = tokenizer
        self.model = model.eval().to(device=self.device, dtype=dtype)
        self.parameters = sum(p.numel() for p in self.model.parameters())

    @torch.no_grad()
    def __call__(self, norm_text: str, word2ph: Sequence[int]) -> torch.Tensor:
        """Per-phone features (1024, sum(word2ph)) as float32 on the CPU.

        `word2ph[i]` is the phone count of character i of `norm_text`. Raises SynthesisError when the
        two disagree, when the text is too long for BERT, or when the tokenizer does not give one
        token per character (the reference indexes rows by character position).
        """
        if len(word2ph) != len(norm_text):
            raise SynthesisError(
                f"word2ph has {len(word2ph)} entries for {len(norm_text)} characters: {norm_text[:40]!r}"
            )
        if len(norm_text) > MAX_CHARACTERS:
            raise SynthesisError(f"text run of {len(norm_text)} characters is too long for BERT: {norm_text[:40]!r}")
        inputs = self.tokenizer(norm_text, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        out = self.model(**inputs, output_hidden_states=True)
        per_token = out["hidden_states"][HIDDEN_LAYER][0].float().cpu()[1:-1]  # (tokens, 1024)
        if per_token.shape[0] < len(norm_text):
            raise SynthesisError(
                f"BERT tokenizer gave {per_token.shape[0]} tokens for {len(norm_text)} characters: {norm_text[:40]!r}"
            )
        if per_token.shape[0] != len(norm_text):
            # The reference indexes rows by character position regardless; do the same, but say so.
            log.warning("BERT gave %d tokens for %d characters in %r", per_token.shape[0], len(norm_text), norm_text[:40])
        repeats = torch.as_tensor(list(word2ph), dtype=torch.long)
        per_phone = torch.repeat_interleave(per_token[: len(norm_text)], repeats, dim=0)  # (n_phones, 1024)
        return per_phone.T.contiguous()  # (1024, n_phones)


def run_features(
    bert: BertFeatures, lang: str, norm_text: str, word2ph: Sequence[int] | None, n_phones: int
) -> torch.Tensor:
    """BERT features of one language run: real features for Chinese, zeros otherwise.

    Returns float32 (1024, n_phones) on the CPU. Raises SynthesisError when Chinese phones and
    features disagree in length.
    """
    if lang != "zh":
        return torch.zeros(BERT_DIM, n_phones, dtype=torch.float32)
    if word2ph is None:
        raise SynthesisError(f"Chinese run without word2ph: {norm_text[:40]!r}")
    feats = bert(norm_text, word2ph)
    if feats.shape[1] != n_phones:
        raise SynthesisError(
            f"BERT features cover {feats.shape[1]} phones, the run has {n_phones}: {norm_text[:40]!r}"
        )
    return feats
