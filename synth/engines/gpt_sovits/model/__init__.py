"""GPT-SoVITS v2 model code: tensors only (checkpoints, text-to-semantic, SoVITS, reference encoder)."""
