"""Ingest: books and scripts into one document model, then into sentences tagged by language.

This package never imports Prefect, synthesis or mastering code.
"""
