"""Synthesis: engines behind one Protocol, voices, G2P, the clip cache and the worker pool.

Never imports Prefect or mastering; may use `ingest`'s sentence and run types.
"""
