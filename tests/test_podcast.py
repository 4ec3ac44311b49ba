"""The weekly podcast workflow: scheduled deployment, episode detection, locks and the RSS feed.

Runs the real flow (espeak voice, podcast preset) in the session's Prefect test harness on copies
of projects/weekly-podcast, with one-sentence scripts wherever the sample's text is not the point.
"""
from __future__ import annotations

import json
import shutil
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from mutagen.id3 import ID3

from flows.cli import main
from flows.steps.feed import ITUNES_NS, PODCAST_NS, podcast_guid
from mastering.chapters_json import check_chapters
from flows.podcast import produce_podcast
from flows.steps.podcast_state import episode_lock, load_state, try_lock
from flows.steps.episode import podcast_settings, scan_episodes
from flows.steps.project import load_project
from ingest.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "projects" / "weekly-podcast"
IT = f"{{{ITUNES_NS}}}"
PC = f"{{{PODCAST_NS}}}"


def copy_project(dest: Path, with_episodes: bool = True) -> Path:
    shutil.copytree(SAMPLE, dest, ignore=shutil.ignore_patterns("out"))
    if not with_episodes:
        for script in (dest / "episodes").glob("*.md"):
            script.unlink()
    return dest


def write_script(project: Path, name: str, number: int, text: str, date: str = "2026-01-05",
                 summary: str = "A test episode.") -> Path:
    path = project / "episodes" / name
    path.write_text(f"---\ntitle: Episode {number}\ndate: {date}\nepisode: {number}\nsummary: {summary}\n---\n\n"
                    f"{text}\n", encoding="utf-8")
    return path


def statuses(summary: dict) -> dict[str, str]:
    return {e["key"]: e["status"] for e in summary["episodes"]}


def feed_items(out: Path) -> list[ET.Element]:
    root = ET.parse(out / "feed.xml").getroot()
    assert root.tag == "rss" and root.get("version") == "2.0"
    return root.find("channel").findall("item")


@pytest.fixture(scope="module")
def sample_runs(prefect_harness, tmp_path_factory) -> dict:
    """The sample podcast produced twice in a row."""
    project = copy_project(tmp_path_factory.mktemp("weekly") / "weekly-podcast")
    first = produce_podcast(str(project))
    out = project / "out"
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")}
    second = produce_podcast(str(project))
    return {"project": project, "out": out, "first": first, "second": second, "mtimes": mtimes}


def test_second_run_produces_nothing(sample_runs) -> None:
    assert statuses(sample_runs["first"]) == {"001-welcome": "produced", "002-pauses": "produced"}
    assert statuses(sample_runs["second"]) == {"001-welcome": "unchanged", "002-pauses": "unchanged"}
    out = sample_runs["out"]
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp3")} == sample_runs["mtimes"]
    assert not list(out.glob(".*.part")), "temporary files left behind"


def test_feed_lists_every_episode_with_true_sizes_and_durations(sample_runs) -> None:
    out = sample_runs["out"]
    root = ET.parse(out / "feed.xml").getroot()
    channel = root.find("channel")
    base = "https://podcasts.example.com/small-hours/"
    assert channel.findtext("title") == "Small Hours"
    assert channel.find(f"{IT}image").get("href") == base + "cover.png"
    assert (out / "cover.png").read_bytes() == (SAMPLE / "cover.png").read_bytes()
    assert channel.findtext(f"{PC}guid") == podcast_guid(base + "feed.xml")
    items = channel.findall("item")
    assert [i.findtext(f"{IT}episode") for i in items] == ["2", "1"]  # newest first
    state = load_state(out)
    for item in items:
        enc = item.find("enclosure")
        name = enc.get("url").removeprefix(base)
        audio = out / name
        assert enc.get("type") == "audio/mpeg"
        assert int(enc.get("length")) == audio.stat().st_size
        decoded, rate = sf.read(str(audio), dtype="float64")
        seconds = len(decoded) / rate
        assert abs(int(item.findtext(f"{IT}duration")) - seconds) <= 0.5 + 1e-9, (name, seconds)
        guid = item.find("guid")
        assert guid.get("isPermaLink") == "false"
        record = next(r for r in state.values() if r["file"] == name)
        assert guid.text == record["guid"]
        assert abs(record["duration_s"] - seconds) < 0.05
        links = {t.get("type"): t.get("url").removeprefix(base) for t in item.findall(f"{PC}transcript")}
        assert set(links) == {"text/vtt", "application/x-subrip"}
        vtt = (out / links["text/vtt"]).read_text(encoding="utf-8")
        assert vtt.startswith("WEBVTT") and "-->" in vtt
        assert (out / links["application/x-subrip"]).exists()
        chapters = item.find(f"{PC}chapters")  # Podcasting 2.0 JSON chapters, one per ## segment
        assert chapters.get("type") == "application/json+chapters"
        doc = json.loads((out / chapters.get("url").removeprefix(base)).read_text(encoding="utf-8"))
        check_chapters(doc, seconds)
        assert doc["version"] == "1.2.0" and doc["chapters"][0]["startTime"] == 0
        script = (sample_runs["project"] / "episodes" / record["script"]).read_text(encoding="utf-8")
        segments = [line[3:].strip() for line in script.splitlines() if line.startswith("## ")]
        assert [c["title"] for c in doc["chapters"]] == (segments if len(segments) > 1 else [record["title"]])


def test_make_on_a_podcast_project_produces_every_episode(prefect_harness, tmp_path: Path, capsys) -> None:
    project = copy_project(tmp_path / "weekly-podcast")
    assert main(["make", str(project)]) == 0
    printed = capsys.readouterr().out
    assert "2 produced, 0 unchanged" in printed and "feed.xml (2 episodes)" in printed
    assert len(feed_items(project / "out")) == 2
    assert main(["make", str(project)]) == 0  # a second make is a scheduled run with nothing new
    assert "0 produced, 2 unchanged" in capsys.readouterr().out
    assert main(["make", str(project), "--chapters", "1"]) == 1
    assert "--chapters is for books" in capsys.readouterr().err
    from flows.cli import build_parser

    make_help = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "make")[1]
    assert "podcast project" in " ".join(make_help.format_help().split())


def test_feed_parses_with_feedparser(sample_runs) -> None:
    feedparser = pytest.importorskip("feedparser", reason="feedparser not installed (xml.etree checks ran)")
    parsed = feedparser.parse((sample_runs["out"] / "feed.xml").read_bytes())
    assert not parsed.bozo and len(parsed.entries) == 2
    assert {e.itunes_episode for e in parsed.entries} == {"1", "2"}


def test_episode_audio_is_mastered_and_tagged(sample_runs) -> None:
    out = sample_runs["out"]
    audio, rate = sf.read(str(out / "001-welcome.mp3"), dtype="float64")
    assert audio.ndim == 1 and rate == 44100
    lufs = pyloudnorm.Meter(rate).integrated_loudness(audio)
    assert abs(lufs - (-19.0)) <= 1.0, lufs
    assert 20 * np.log10(np.abs(audio).max()) <= -1.0
    tags = ID3(out / "001-welcome.mp3")
    assert tags["TIT2"].text[0] == "Welcome to Small Hours"
    assert tags["TALB"].text[0] == "Small Hours"
    assert tags["TRCK"].text[0] == "1"
    assert tags.getall("APIC")[0].data == (SAMPLE / "cover.png").read_bytes()
    # The script's `[pause 2s]` is a 2 s gap between the first and second sentence.
    vtt = (out / "001-welcome.vtt").read_text(encoding="utf-8")
    from mastering.transcripts import parse_times

    times = parse_times(vtt)
    assert abs((times[1][0] - times[0][1]) - 2.0) < 0.01, times


def test_adding_a_script_produces_exactly_one_episode(prefect_harness, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "p", with_episodes=False)
    write_script(project, "001-one.md", 1, "The first episode is short.")
    first = produce_podcast(str(project))
    out = project / "out"
    guid = load_state(out)["001-one"]["guid"]
    write_script(project, "002-two.md", 2, "## Part one\n\nThe second one.\n\n## Part two\n\nIt has two parts.",
                 date="2026-01-12")
    write_script(project, "003-later.md", 3, "This one waits for its date.", date="2999-01-01")
    write_script(project, "_draft.md", 4, "A draft is never produced.")
    second = produce_podcast(str(project))
    assert statuses(first) == {"001-one": "produced"}
    assert statuses(second) == {"001-one": "unchanged", "002-two": "produced", "003-later": "produced"}
    chapters = ID3(out / "002-two.mp3").getall("CHAP")
    assert [c.sub_frames["TIT2"].text[0] for c in sorted(chapters, key=lambda c: c.start_time)] == \
        ["Part one", "Part two"]
    items = feed_items(out)
    assert [i.findtext("title") for i in items] == ["Episode 2", "Episode 1"]  # 003 not yet published
    assert [i.findtext("guid") for i in items][1] == guid  # stable across rebuilds


def test_changed_text_reproduces_only_that_episode(prefect_harness, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "p", with_episodes=False)
    write_script(project, "001-one.md", 1, "Short text number one.")
    write_script(project, "002-two.md", 2, "Short text number two.", date="2026-01-12")
    produce_podcast(str(project))
    out = project / "out"
    before = load_state(out)
    write_script(project, "001-one.md", 1, "Short text number one, corrected.")
    write_script(project, "002-two.md", 2, "Short text number two.", date="2026-01-12", summary="Edited summary.")
    summary = produce_podcast(str(project))
    assert statuses(summary) == {"001-one": "produced", "002-two": "unchanged"}
    after = load_state(out)
    assert after["001-one"]["guid"] == before["001-one"]["guid"]
    assert after["002-two"]["produced_at"] == before["002-two"]["produced_at"]
    items = {i.findtext("title"): i for i in feed_items(out)}
    assert items["Episode 2"].findtext("description") == "Edited summary."  # feed-only edit, no re-render


def test_cache_stats_and_prune_read_a_podcast_project(prefect_harness, tmp_path: Path, capsys) -> None:
    """`bookcast cache` on a podcast: the episodes' clips are kept, an edited sentence's old clip goes."""
    from flows.cli import main

    project = copy_project(tmp_path / "p", with_episodes=False)
    write_script(project, "001-one.md", 1, "Short text number one. It has two sentences.")
    produce_podcast(str(project))
    write_script(project, "001-one.md", 1, "Short text number one, corrected. It has two sentences.")
    produce_podcast(str(project))
    capsys.readouterr()
    assert main(["cache", "stats", str(project)]) == 0
    assert "3 clips" in capsys.readouterr().out  # two sentences, one of them in two versions
    assert main(["cache", "prune", str(project)]) == 0
    assert "removed 1 clips no longer used; 2 kept" in capsys.readouterr().out
    assert produce_podcast(str(project), force=True)["total"]["produced"] == 1  # nothing it needs was removed


def test_an_episode_locked_by_another_run_is_left_to_it(prefect_harness, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "p", with_episodes=False)
    write_script(project, "001-one.md", 1, "Locked elsewhere.")
    write_script(project, "002-two.md", 2, "Free to produce.", date="2026-01-12")
    out = project / "out"
    with try_lock(episode_lock(out, "001-one")) as got:
        assert got
        busy = produce_podcast(str(project))
    assert statuses(busy) == {"001-one": "busy", "002-two": "produced"}
    assert not (out / "001-one.mp3").exists()
    assert statuses(produce_podcast(str(project))) == {"001-one": "produced", "002-two": "unchanged"}


def test_overlapping_runs_never_produce_an_episode_twice(prefect_harness, tmp_path: Path, monkeypatch) -> None:
    """Two runs start together; run A is held inside its first render until run B has also
    reached a render, so the runs truly overlap. Without the per-episode lock, B's first render
    would be A's episode too."""
    import flows.steps.episode as ep

    project = copy_project(tmp_path / "p", with_episodes=False)
    for n in range(1, 4):
        write_script(project, f"00{n}-e.md", n, f"Overlap test number {n}.", date=f"2026-01-0{n + 1}")
    real_render = ep.render
    rendered: list[str] = []
    second_render = threading.Event()

    def render(settings, script, *args):
        rendered.append(script.key)
        if len(rendered) == 1:
            second_render.wait(timeout=60)  # hold run A inside episode 1 ...
        else:
            second_render.set()  # ... until run B is rendering something too
        return real_render(settings, script, *args)

    monkeypatch.setattr(ep, "render", render)
    start = threading.Barrier(2)
    summaries: list[dict] = []
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            summaries.append(produce_podcast(str(project)))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert second_render.is_set(), "the two runs did not overlap"
    assert sorted(rendered) == ["001-e", "002-e", "003-e"], rendered  # each rendered exactly once
    produced = [k for s in summaries for k, v in statuses(s).items() if v == "produced"]
    assert sorted(produced) == ["001-e", "002-e", "003-e"], summaries
    assert "busy" in {v for s in summaries for v in statuses(s).values()}
    assert len(feed_items(project / "out")) == 3
    assert statuses(produce_podcast(str(project))) == {k: "unchanged" for k in produced}


def test_deployment_has_the_project_schedule_and_parameters(prefect_harness, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from flows.podcast_cmd import podcast_deployment

    project = copy_project(tmp_path / "weekly-podcast")
    deployment_id = podcast_deployment(project).apply()
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(deployment_id)
        flow = client.read_flow(deployment.flow_id)
    assert (flow.name, deployment.name) == ("produce_podcast", "small-hours")
    assert deployment.parameters == {"project": str(project.resolve())}
    assert deployment.entrypoint == "flows.podcast.produce_podcast"
    assert len(deployment.schedules) == 1
    schedule = deployment.schedules[0].schedule
    assert (schedule.cron, schedule.timezone) == ("0 7 * * 1", "Europe/London")
    assert deployment.schedules[0].active
    limit = deployment.global_concurrency_limit
    assert limit is not None and limit.limit == 1


def test_episode_command_produces_one_script(prefect_harness, tmp_path: Path, capsys) -> None:
    import flows.cli as cli

    project = copy_project(tmp_path / "p", with_episodes=False)
    write_script(project, "001-one.md", 1, "Only this one.")
    write_script(project, "002-two.md", 2, "Not this one.", date="2026-01-12")
    assert cli.main(["episode", str(project), "001-one.md"]) == 0
    printed = capsys.readouterr().out
    assert "1 produced" in printed and "feed" in printed
    assert sorted(load_state(project / "out")) == ["001-one"]
    assert cli.main(["episode", str(project), str(tmp_path / "elsewhere.md")]) == 1
    assert "script not found" in capsys.readouterr().err


def test_bad_podcast_projects_name_the_file_and_problem(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "p")
    toml = project / "project.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace('"Europe/London"', '"Mars/Olympus"'), encoding="utf-8")
    with pytest.raises(InputError, match="project.toml.*Mars/Olympus"):
        podcast_settings(load_project(project))
    toml.write_text(text.replace("https://podcasts.example.com", "podcasts.example.com"), encoding="utf-8")
    with pytest.raises(InputError, match="base_url"):
        podcast_settings(load_project(project))
    toml.write_text(text, encoding="utf-8")
    write_script(project, "003-dup.md", 2, "Same number as 002.")
    with pytest.raises(InputError, match="003-dup.md.*episode number 2"):
        scan_episodes(podcast_settings(load_project(project)))
    (project / "episodes" / "003-dup.md").write_text("---\nepisode: two\n---\nText.\n", encoding="utf-8")
    with pytest.raises(InputError, match="003-dup.md.*whole number"):
        scan_episodes(podcast_settings(load_project(project)))


def test_bad_cron_is_an_input_error(tmp_path: Path) -> None:
    from flows.podcast_cmd import podcast_deployment

    project = copy_project(tmp_path / "p")
    toml = project / "project.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('"0 7 * * 1"', '"every monday"'), encoding="utf-8")
    with pytest.raises(InputError, match="cron"):
        podcast_deployment(project)


def test_state_file_is_json_with_one_record_per_episode(sample_runs) -> None:
    data = json.loads((sample_runs["out"] / "episodes.json").read_text(encoding="utf-8"))
    assert data["version"] == 1
    assert sorted(data["episodes"]) == ["001-welcome", "002-pauses"]
    assert all(len(r["recipe"]) == 64 for r in data["episodes"].values())
