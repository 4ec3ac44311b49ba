"""The house rules (README, "Layout"): floors import only downwards.

    flows (tasks, flows, CLI)  →  flows/steps  →  {synth, mastering}  →  ingest

- ingest imports nothing of ours outside ingest;
- mastering imports only the root errors (`ingest.errors`) besides itself;
- synth never imports mastering or flows;
- the GPT-SoVITS tensor code (checkpoint, text-to-semantic, SoVITS, reference encoder) imports no
  text code: no ingest, no G2P — only torch, its own modules and the errors;
- flows/steps never imports Prefect, nor the flow/task/CLI modules above it;
- nothing outside the flow, task and CLI modules imports Prefect.

Imports are read with `ast` (including imports inside functions), so a lazy import breaks a rule as
surely as one at the top. `test_a_planted_forbidden_import_is_caught` shows the check can fail.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ingest", "synth", "mastering", "flows")
# The modules that may use Prefect: the flows, their tasks, the CLI commands and the runtime that
# configures Prefect for them.
PREFECT_OK = {"flows/produce.py", "flows/tasks.py", "flows/podcast.py", "flows/cli.py", "flows/runtime.py",
              "flows/make_cmd.py", "flows/podcast_cmd.py", "flows/studio_cmd.py"}


def imports(source: str) -> list[str]:
    """Every module a source file imports (absolute names; relative ones as '.name')."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def violations(rel: str, source: str) -> list[str]:
    """What the module at `rel` (a path relative to the repository) imports against the rules."""
    top = lambda name: name.split(".")[0]  # noqa: E731
    out = []
    for name in imports(source):
        if name.startswith("."):  # relative: within its own package
            continue
        first = top(name)
        if first == "prefect" or first == "prefect_dask":
            if rel not in PREFECT_OK:
                out.append(f"{rel} imports {name}: Prefect belongs to the flow, task and CLI modules")
            continue
        if first not in PACKAGES:
            continue
        if rel.startswith("ingest/") and first != "ingest":
            out.append(f"{rel} imports {name}: ingest imports nothing of ours")
        elif rel.startswith("mastering/") and first != "mastering" and name != "ingest.errors":
            out.append(f"{rel} imports {name}: mastering imports only the root errors (ingest.errors)")
        elif rel.startswith("synth/") and first in ("mastering", "flows"):
            out.append(f"{rel} imports {name}: synth never imports {first}")
        elif rel.startswith(TENSOR_CODE) and (first == "ingest" and name != "ingest.errors"
                                              or name.startswith(("synth.g2p", "synth.engines.gpt_sovits.text"))):
            out.append(f"{rel} imports {name}: the GPT-SoVITS tensor code knows tensors, not text")
        elif rel.startswith("flows/steps/") and first == "flows" and not name.startswith("flows.steps"):
            out.append(f"{rel} imports {name}: flows/steps sits under the flows, tasks and CLI")
    return out


TENSOR_CODE = ("synth/engines/gpt_sovits/model/", "synth/gpt_sovits/")


def test_the_code_keeps_the_house_rules() -> None:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            found += violations(rel, path.read_text(encoding="utf-8"))
    assert not found, "\n".join(found)


def test_a_planted_forbidden_import_is_caught() -> None:
    planted = {
        "ingest/epub.py": "from synth.cache import ClipCache",
        "mastering/stitch.py": "def f():\n    from synth.engine import Clip",
        "synth/pool.py": "import mastering.presets",
        "synth/engines/gpt_sovits/model/t2s.py": "from ingest.segment import Sentence",
        "flows/steps/export.py": "from prefect import task",
        "flows/steps/spoken.py": "from flows.tasks import export_chapter",
        "flows/steps/feed.py": "import flows.produce",
    }
    for rel, source in planted.items():
        assert violations(rel, source), rel
    assert not violations("mastering/export.py", "from ingest.errors import InputError\nfrom .meter import Meter")
    assert not violations("flows/tasks.py", "from prefect import task\nfrom flows.steps.export import export")
