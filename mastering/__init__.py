"""Mastering: pure numpy DSP on (samples,) / (samples, channels) float arrays plus a sample rate —
stitching, loudness, true peak, limiting, encoding, tags, QC and presets.

Imports nothing of ours except `ingest.errors` (the one exception hierarchy).
"""
