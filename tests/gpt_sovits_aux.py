"""Tiny random BERT and HuBERT models in Hugging Face layout, for the GPT-SoVITS voice tests.

A voice folder needs both beside its GPT/SoVITS weights. Written once per test session by the
`aux_models` fixture (conftest.py), so every test module that builds a voice shares one pair
instead of each module building its own.
"""
from __future__ import annotations

from pathlib import Path

import torch

from synth.engines.gpt_sovits.model.bert import BERT_DIM

TEST_CHARS = "我们用训练模型今天气真好你世界中国人是的这个测试一二三四五六七八九十"
PUNCT = "，。！？、,.!?…-'"


def build_aux_models(root: Path) -> tuple[Path, Path]:
    """(bert_dir, hubert_dir) under `root`: seeded tiny random models (BERT hidden 1024, HuBERT 768)."""
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        BertTokenizer,
        HubertConfig,
        HubertModel,
        Wav2Vec2FeatureExtractor,
    )

    bert_dir, hubert_dir = root / "chinese-roberta-wwm-ext-large", root / "chinese-hubert-base"
    bert_dir.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(dict.fromkeys(TEST_CHARS + PUNCT))
    vocab += list("abcdefghijklmnopqrstuvwxyz0123456789")
    (bert_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(11)
    bert_cfg = BertConfig(
        vocab_size=len(vocab), hidden_size=BERT_DIM, num_hidden_layers=3, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=512,
    )
    BertForMaskedLM(bert_cfg).save_pretrained(bert_dir)
    BertTokenizer(str(bert_dir / "vocab.txt")).save_pretrained(bert_dir)
    torch.manual_seed(12)
    hub_cfg = HubertConfig(
        hidden_size=768, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )
    HubertModel(hub_cfg).save_pretrained(hubert_dir)
    Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(hubert_dir)
    return bert_dir, hubert_dir
