"""Production orchestration: cache reuse, one-sentence edits, failure isolation + rerun, Dask parity."""
from __future__ import annotations

from dataclasses import replace

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from flows.cli import main
from synth import engines
from synth.errors import SynthesisError
from synth.engines.espeak.engine import EspeakEngine

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "projects" / "bilingual-sample"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    dest = tmp_path / "proj"
    shutil.copytree(SAMPLE, dest)
    return dest


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_cached_rerun_synthesizes_nothing_and_one_edit_one_sentence(prefect_harness, project: Path) -> None:
    out = project / "out"
    assert main(["make", str(project), "--out", str(out), "--workers", "0"]) == 0
    first = manifest(out)
    n = first["total"]["sentences"]
    assert first["this_run"]["synthesized"] == n and first["this_run"]["reused"] == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.mp3")}
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")}

    assert main(["make", str(project), "--out", str(out), "--workers", "0"]) == 0
    second = manifest(out)
    assert second["this_run"]["synthesized"] == 0 and second["this_run"]["reused"] == n
    assert {p.name: p.read_bytes() for p in out.glob("*.mp3")} == before  # same clips, same bytes
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")} == mtimes  # not even re-exported

    book = project / "book.md"
    book.write_text(book.read_text(encoding="utf-8").replace("see you next time", "see you next week"), encoding="utf-8")
    assert main(["make", str(project), "--out", str(out), "--workers", "0"]) == 0
    third = manifest(out)
    assert third["this_run"]["synthesized"] == 1 and third["this_run"]["reused"] == n - 1
    assert {p.name for p in out.glob("*.mp3")} == set(before)
    changed = {p.name for p in out.glob("*.mp3") if p.stat().st_mtime_ns != mtimes[p.name]}
    assert changed == {p.name for p in out.glob("03-*.mp3")}  # only the edited chapter re-exported


def test_corrupt_cache_entry_is_resynthesized(prefect_harness, project: Path) -> None:
    out = project / "out"
    assert main(["make", str(project), "--out", str(out), "--workers", "0", "--chapters", "3"]) == 0
    flac = next((out / ".work" / "clips").glob("??/*.flac"))
    flac.write_bytes(flac.read_bytes()[:100])
    assert main(["make", str(project), "--out", str(out), "--workers", "0", "--chapters", "3"]) == 0
    assert manifest(out)["this_run"]["synthesized"] == 1


class FlakyEngine(EspeakEngine):
    """espeak that fails on sentences containing 'Every chapter' while `broken` is set."""

    name = "flaky"
    broken = True

    def synthesize(self, sentences, seed=0):
        if FlakyEngine.broken and any("Every chapter" in s.text for s in sentences):
            raise SynthesisError("simulated GPU fault")
        return super().synthesize(sentences, seed)

    def fingerprint(self) -> str:  # same sound as espeak
        return super().fingerprint()


def register_flaky() -> None:
    espeak = engines.engine_info("espeak")
    engines.register(replace(espeak, name="flaky", build=lambda voice, lexicon: FlakyEngine()))


def test_failed_chapter_is_isolated_then_rerun(prefect_harness, project: Path, capsys) -> None:
    register_flaky()
    toml = project / "project.toml"
    toml.write_text(toml.read_text().replace('engine = "espeak"', 'engine = "flaky"'))
    out = project / "out"
    FlakyEngine.broken = True
    assert main(["make", str(project), "--out", str(out), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "1 chapter(s) failed: 2" in err
    m = manifest(out)
    assert [c["status"] for c in m["chapters"]] == ["ok", "failed", "ok"]
    assert "simulated GPU fault" in m["chapters"][1]["error"]
    assert sorted(p.name[:2] for p in out.glob("*.mp3")) == ["01", "03"]

    FlakyEngine.broken = False
    assert main(["rerun", str(project), "--out", str(out), "--chapter", "2", "--workers", "0"]) == 0
    m = manifest(out)
    assert [c["status"] for c in m["chapters"]] == ["ok", "ok", "ok"]
    assert m["this_run"]["chapters"] == [2]
    # chapter 2's sentences that did synthesize before the fault were cached and reused
    assert m["this_run"]["synthesized"] + m["this_run"]["reused"] == m["chapters"][1]["sentences"]
    assert sorted(p.name[:2] for p in out.glob("*.mp3")) == ["01", "02", "03"]


def test_two_local_workers_and_a_dask_cluster_give_identical_files(prefect_harness, tmp_path: Path,
                                                                   monkeypatch) -> None:
    """Three placements of the same book give byte-identical chapter files: local worker processes;
    synthesis batches on a Dask cluster (ephemeral-server mode); and the whole flow's tasks on the
    cluster through prefect-dask's task runner (real API server: the test harness)."""
    import os

    from distributed import Client, LocalCluster
    from prefect.settings import PREFECT_API_URL

    from flows import runtime

    local_out, batches_out, tasks_out = tmp_path / "local", tmp_path / "batches", tmp_path / "tasks"
    assert main(["make", str(SAMPLE), "--out", str(local_out), "--workers", "2"]) == 0
    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())  # the workers report to the harness
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with monkeypatch.context() as m:
            m.setattr(runtime, "user_api_server", lambda: False)  # as with an ephemeral server
            assert main(["make", str(SAMPLE), "--out", str(batches_out), "--dask", cluster.scheduler_address]) == 0
        assert main(["make", str(SAMPLE), "--out", str(tasks_out), "--dask", cluster.scheduler_address]) == 0
        with Client(cluster) as client:
            worker_pids = set(client.run(os.getpid).values())
    local = {p.name: p.read_bytes() for p in local_out.glob("*.mp3")}
    assert len(local) == 3
    for out in (batches_out, tasks_out):
        assert {p.name: p.read_bytes() for p in out.glob("*.mp3")} == local
        pids = {int(json.loads(p.read_text())["worker"].split(":")[1]) for p in (out / ".work" / "clips").glob("??/*.json")}
        assert pids and pids <= worker_pids and os.getpid() not in pids  # synthesized on the cluster


def test_cache_stats_and_prune(prefect_harness, project: Path, capsys) -> None:
    out = project / "out"
    assert main(["make", str(project), "--out", str(out), "--workers", "0"]) == 0
    n = manifest(out)["total"]["sentences"]
    book = project / "book.md"
    book.write_text(book.read_text(encoding="utf-8").replace("see you next time", "until next week"), encoding="utf-8")
    assert main(["make", str(project), "--out", str(out), "--workers", "0"]) == 0
    capsys.readouterr()
    assert main(["cache", "stats", str(project), "--out", str(out)]) == 0
    assert f"{n + 1} clips" in capsys.readouterr().out
    assert main(["cache", "prune", str(project), "--out", str(out)]) == 0
    assert "removed 1 clips" in capsys.readouterr().out


def test_bucket_batches_groups_by_length() -> None:
    from ingest.segment import segment
    from synth.jobs import bucket_batches

    items = [(str(i), s) for i, s in enumerate(segment("A. " + "Long sentence here with words. " * 3 + "B. C."))]
    batches = bucket_batches(items, 2)
    lengths = [[len(s.text) for _, s in b] for b in batches]
    assert all(len(b) <= 2 for b in batches) and sum(map(len, batches)) == len(items)
    flat = [x for b in lengths for x in b]
    assert flat == sorted(flat) and np.all(np.diff(flat) >= 0)


def test_a_continuous_voice_gets_its_batches_in_reading_order(tmp_path: Path) -> None:
    """The synthesis step cuts a chapter into batches by length for static decoding, but in reading
    order for a continuous GPT-SoVITS voice (a mix of lengths, which its slots drain on)."""
    from concurrent.futures import Future

    from flows.steps.synthesis import Synthesis, engine_spec, synthesize
    from ingest.script import Line
    from ingest.segment import segment
    from synth.cache import ClipCache

    class Probe:  # a pool that keeps what it is sent and fails it, so nothing is synthesized
        def __init__(self) -> None:
            self.batches: list[list[str]] = []

        def submit(self, spec, keys, sentences, seed, measure=None) -> Future:
            self.batches.append([s.text for s in sentences])
            future: Future = Future()
            future.set_exception(RuntimeError("probe"))
            return future

    texts = [f"Sentence number {i} {'goes on and on ' * (i % 5)}here." for i in range(20)]
    lines = [Line(s) for t in texts for s in segment(t, default="en")]
    order = [line.sentence.text for line in lines]
    assert len(order) == 20
    # batch_size 2: static batches of 2 by length; continuous, 4 slots' worth (8) in reading order
    cases = {False: ([2] * 10, sorted(order, key=len)), True: ([8, 8, 4], order)}
    for continuous, (sizes, expected) in cases.items():
        voice = tmp_path / f"voice-{continuous}"
        voice.mkdir()
        (voice / "voice.toml").write_text(
            'gpt = "g.ckpt"\nsovits = "s.pth"\nbert = "b"\nhubert = "h"\n[[reference]]\naudio = "r.wav"\n\n'
            f"[settings]\nbatch_size = 2\ncontinuous = {str(continuous).lower()}\n", encoding="utf-8")
        probe = Probe()
        synth = Synthesis(probe, engine_spec("gpt-sovits", voice, None), "fp", ClipCache(tmp_path / "clips"))  # type: ignore[arg-type]
        with pytest.raises(SynthesisError, match="probe"):
            synthesize(synth, lines)
        assert [len(b) for b in probe.batches] == sizes
        assert [t for b in probe.batches for t in b] == expected


def test_second_run_on_the_same_output_refuses_clearly(prefect_harness, project: Path, capsys) -> None:
    import multiprocessing as mp

    from flows.steps.locking import exclusive

    out = project / "out"
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(out / ".work"), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        assert main(["make", str(project), "--out", str(out), "--workers", "0"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "another bookcast run is using this folder" in err[0]
        assert not list(out.glob("*.mp3"))
    finally:
        release.set()
        holder.join(30)
    with exclusive(out / ".work"):  # released by the holder's exit
        pass


def _hold_lock(folder: str, ready, release) -> None:
    from flows.steps.locking import exclusive

    with exclusive(Path(folder)):
        ready.set()
        release.wait(60)


def test_flow_run_ends_failed_but_carries_the_manifest(prefect_harness, project: Path) -> None:
    from flows.produce import produce_book

    register_flaky()
    toml = project / "project.toml"
    toml.write_text(toml.read_text().replace('engine = "espeak"', 'engine = "flaky"'))
    FlakyEngine.broken = True
    try:
        state = produce_book(str(project), str(project / "out"), workers=0, return_state=True)
    finally:
        FlakyEngine.broken = False
    assert state.is_failed() and "chapter(s) 2 failed" in state.message
    m = state.result(raise_on_failure=False)
    assert [c["status"] for c in m["chapters"]] == ["ok", "failed", "ok"]
