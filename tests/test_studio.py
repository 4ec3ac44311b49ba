"""The proofing studio on a produced sample book: the page in a real browser (headless Chromium
driven by Playwright), the API's refusals, and what lands on disk.

The browser test walks the issue's path: play a sentence to its end, re-take one and keep the new
take, edit another's text, add a pronunciation, re-export — then checks that exactly those sentences
and chapters changed, that the MP3s decode, and that a fresh `bookcast make` of the project (new
folder, empty cache) reproduces the same bytes. It saves a screenshot of the chapter view in
tests/artifacts/ for review.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf

from flows.cli import main

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "projects" / "bilingual-sample"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def produced(prefect_harness, tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the sample project (the studio writes into it) and its produced output folder."""
    root = tmp_path_factory.mktemp("studio")
    project = root / "project"
    shutil.copytree(SAMPLE, project)
    out = root / "out"
    assert main(["make", str(project), "--out", str(out)]) == 0
    return project, out


def shas(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("*.mp3"))}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """The studio's app on a real port, in a thread of this process."""

    def __init__(self, project: Path, out: Path) -> None:
        import uvicorn

        from flows.studio.server import create_app
        from flows.studio.service import Studio

        self.studio = Studio(str(project), str(out))
        self.port = free_port()
        config = uvicorn.Config(create_app(self.studio), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}/"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.studio.close()


def delivered_keys(studio, chapters) -> dict[tuple[int, int], str]:
    return {(i, n): row["key"] for i in chapters for n, row in
            ((r["line"], r) for r in studio.chapter(i)["sentences"])}


def test_api_refuses_bad_requests_and_changes_nothing(produced) -> None:
    from starlette.testclient import TestClient

    from flows.studio.server import create_app
    from flows.studio.service import Studio

    project, out = produced
    before = shas(out)
    studio = Studio(str(project), str(out))
    try:
        client = TestClient(create_app(studio))
        assert client.get("/api/book").json()["chapters"][0]["index"] == 1
        for path, status, words in [
            ("/api/chapter/99", 400, "no chapter 99"),
            ("/api/chapter/x", 400, "whole number"),
            ("/api/audio/..%2Fmanifest.json", 404, ""),
            ("/api/audio/manifest.json", 404, "no such file"),
            ("/api/clip/../../etc/passwd", 404, ""),
            ("/api/clip/" + "0" * 64, 404, "no such clip"),
            ("/static/../service.py", 404, ""),
        ]:
            reply = client.get(path)
            assert reply.status_code == status, (path, reply.text)
            if words:
                assert words in reply.json()["error"], (path, reply.text)
        for body, words in [({"chapter": 1, "line": 999}, "has no sentence 999"),
                            ({"chapter": 1}, "line must be"), ({"chapter": 1, "line": 1, "take": 30}, "no take 30")]:
            reply = client.post("/api/choose", json=body)
            assert reply.status_code == 400 and words in reply.json()["error"], reply.text
        reply = client.post("/api/pause", json={"chapter": 1, "line": 1, "seconds": 99})
        assert reply.status_code == 400 and "0 to 30 seconds" in reply.json()["error"]
        reply = client.post("/api/edit", content=b"not json", headers={"Content-Type": "application/json"})
        assert reply.status_code == 400 and "not JSON" in reply.json()["error"]
        reply = client.post("/api/pronounce", json={"word": "loudness", "pronunciation": "NOT ARPABET", "apply": True})
        assert reply.status_code == 409 and "unknown ARPAbet" in reply.json()["error"]
    finally:
        studio.close()
    assert not (project / "proof.toml").exists() and not (project / "lexicon.toml").exists()
    assert shas(out) == before


def test_a_retake_while_the_voice_is_missing_is_refused(produced, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from flows.studio.server import create_app
    from flows.studio.service import Studio

    project, out = produced
    broken = tmp_path / "project"
    shutil.copytree(project, broken)
    config = broken / "project.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        'engine = "espeak"', 'engine = "gpt-sovits"\npath = "voices/gone"'), encoding="utf-8")
    studio = Studio(str(broken), str(out))
    try:
        reply = TestClient(create_app(studio)).post("/api/retake", json={"chapter": 1, "line": 1})
        assert reply.status_code == 400 and "voice is not available" in reply.json()["error"], reply.text
    finally:
        studio.close()
    assert not (broken / "proof.toml").exists()


def test_a_running_make_and_two_tabs_never_write_at_once(produced, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from starlette.testclient import TestClient

    from flows.steps.locking import exclusive
    from flows.steps.proof import read_proof
    from flows.studio.server import create_app
    from flows.studio.service import Studio

    project, out = produced
    copy = tmp_path / "project"  # the choices below stay out of the shared project
    shutil.copytree(project, copy)
    studio = Studio(str(copy), str(out))
    try:
        client = TestClient(create_app(studio))
        clips = sorted((out / ".work" / "clips").rglob("*.flac"))
        with exclusive(out / ".work"):  # what a running `bookcast make` holds
            reply = client.post("/api/retake", json={"chapter": 3, "line": 1})
        assert reply.status_code == 409 and "another bookcast run is using this folder" in reply.json()["error"]
        assert sorted((out / ".work" / "clips").rglob("*.flac")) == clips  # nothing written

        def pause(line: int) -> int:  # tabs at once, each setting another sentence's pause
            return client.post("/api/pause", json={"chapter": 3, "line": line, "seconds": 1 + line / 10}).status_code

        lines = range(1, len(studio.script(3)) + 1)
        with ThreadPoolExecutor(4) as tabs:
            assert set(tabs.map(pause, lines)) == {200}
        choices = read_proof(copy / "proof.toml").choices
        assert {k: c.pause_s for k, c in choices.items()} == {(3, n): 1 + n / 10 for n in lines}
    finally:
        studio.close()


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt install chromium; .ci/run does)")
def test_proof_a_book_in_the_browser(produced, tmp_path: Path, monkeypatch) -> None:
    from playwright.sync_api import expect, sync_playwright
    from prefect.settings import PREFECT_API_URL

    project, out = produced
    # The re-export's `bookcast make` reports to the session's test server instead of starting its own.
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    files = {c["index"]: c["file"] for c in manifest["chapters"]}
    before = shas(out)
    served = Served(project, out)
    keys_before = delivered_keys(served.studio, files)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(served.url)
            rows = page.locator("#sentences tbody tr")
            expect(rows.first).to_be_visible(timeout=20_000)
            message = page.locator("#message")

            # Listen: the first sentence plays to its end.
            rows.nth(0).locator(".play").click()
            page.wait_for_function("document.querySelector('#clip').ended", timeout=30_000)

            # Re-take the second sentence with the keyboard, then keep the new take.
            rows.nth(1).locator("td").first.click()
            page.keyboard.press("r")
            expect(message).to_contain_text("Take 2 of sentence 2 is ready", timeout=20_000)
            rows.nth(1).locator("select.take").select_option("1")
            expect(message).to_contain_text("Take 2 kept for sentence 2", timeout=20_000)

            # Edit the third sentence's text.
            rows.nth(2).locator("button.edit").click()
            rows.nth(2).locator(".edit-text").fill("We train models with PyTorch, then turn books into audio.")
            rows.nth(2).locator(".save-edit").click()
            expect(message).to_contain_text("will be spoken as edited", timeout=20_000)

            # A pronunciation: listed first, then added.
            page.fill("#word", "loudness")
            page.fill("#phones", "L AW1 D N IH0 S")
            page.click("#find-word")
            expect(message).to_contain_text("1 sentence(s) contain", timeout=20_000)
            page.click("#add-word")
            expect(message).to_contain_text("re-synthesized", timeout=30_000)

            page.click("#reexport")
            expect(message).to_contain_text(re.compile("Re-export(ed| ended)"), timeout=240_000)
            assert message.inner_text().startswith("Re-exported"), message.inner_text()
            page.locator("#chapter-list li").first.click()
            expect(page.locator("#chapter-status")).to_contain_text("Delivered", timeout=20_000)
            page.wait_for_function("document.querySelector('#picture').toDataURL().length > 5000", timeout=20_000)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "studio-chapter.png"), full_page=True)
            assert not errors, errors
            browser.close()
        keys_after = delivered_keys(served.studio, files)
    finally:
        served.close()

    changed = {k for k in keys_before if keys_before[k] != keys_after[k]}
    loudness = {k for k in keys_before if "loudness" in served.studio.script(k[0])[k[1] - 1].sentence.text}
    assert len(loudness) == 1
    assert changed == {(1, 2), (1, 3)} | loudness  # exactly those sentences
    proof = (project / "proof.toml").read_text(encoding="utf-8")
    assert "take = 1" in proof and "We train models with PyTorch" in proof
    assert '"loudness" = "L AW1 D N IH0 S"' in (project / "lexicon.toml").read_text(encoding="utf-8")

    after = shas(out)
    touched = {files[i] for i, _ in changed}
    assert {f for f in after if after[f] != before[f]} == touched  # exactly those chapters re-mastered
    for name in after:
        audio, rate = sf.read(out / name)
        assert rate == 44100 and len(audio) > rate

    fresh = tmp_path / "fresh"  # a new folder and an empty cache: the project alone decides
    assert main(["make", str(project), "--out", str(fresh)]) == 0
    assert shas(fresh) == after
