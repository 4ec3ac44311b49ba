"""Prefect tasks and flows, and the `bookcast` CLI. Thin: tasks wrap library calls."""
