"""Checkpoint key -> module key for SoVITS v2 weight files: every saved key has exactly one fate.

Our modules use plain names where the reference's layout is an accident of its code (Sequential
slots holding activations, flips interleaved with couplings, wrapper modules around one Linear).
The rewrite rules below are the whole difference; `load_state_strict` checks the result key by key
and shape by shape.
"""
from __future__ import annotations

import re

# Applied in order; each is (pattern, replacement). A key may be rewritten by several rules.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Weight norm: g and v load into the parametrization (folded into `weight` after loading).
    (re.compile(r"\.weight_g$"), ".parametrizations.weight.original0"),
    (re.compile(r"\.weight_v$"), ".parametrizations.weight.original1"),
    # MelStyleEncoder: Sequential slots and LinearNorm/ConvNorm wrappers.
    (re.compile(r"^ref_enc\.spectral\.0\.fc\."), "ref_enc.spectral1."),
    (re.compile(r"^ref_enc\.spectral\.3\.fc\."), "ref_enc.spectral2."),
    (re.compile(r"^ref_enc\.temporal\.(\d+)\.conv1\.conv\."), r"ref_enc.temporal.\1.conv."),
    (re.compile(r"^ref_enc\.fc\.fc\."), "ref_enc.out."),
    # Quantizer: one codebook per residual stage.
    (re.compile(r"^quantizer\.vq\.layers\.(\d+)\._codebook\.embed$"), r"quantizer.codebooks.\1.embed"),
)
# Flow: couplings sit at even indices of the reference list (odd ones are parameter-free flips).
_FLOW = re.compile(r"^flow\.flows\.(\d+)\.")
# EMA statistics of codebook training; inference uses the codebook vectors only.
_TRAINING_ONLY = re.compile(r"^quantizer\.vq\.layers\.\d+\._codebook\.(inited|cluster_size|embed_avg)$")


def sovits_module_key(checkpoint_key: str) -> str | None:
    """Module key for a SoVITS v2 checkpoint key, or None for the codebook's training statistics.

    Unknown keys come back unchanged, so the strict loader reports them as unexpected.
    """
    if _TRAINING_ONLY.match(checkpoint_key):
        return None
    key = checkpoint_key
    flow = _FLOW.match(key)
    if flow and int(flow.group(1)) % 2 == 0:
        key = f"flow.couplings.{int(flow.group(1)) // 2}." + key[flow.end() :]
    for pattern, replacement in _RULES:
        key = pattern.sub(replacement, key)
    return key
