"""The Prefect-free application logic that flows/tasks.py and the flows wrap, as in Prefect's own
examples: what is spoken, synthesis with its cache, clip review, chapter export, manifests, whole-book
files, podcast episodes and feeds, preview, project files, locks and progress.

Nothing here imports Prefect (an architecture test checks it), so every step runs and is tested on
its own, and the CLI can check inputs before Prefect starts.
"""
