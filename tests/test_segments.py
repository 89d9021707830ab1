"""Segment exports (CSV, Audacity labels, Praat TextGrid, RTTM), each opened by the tool
that reads it, and the speech turns they carry."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

import dramapic_subs
from dramapic_subs.result import Analysis, ModelOutput
from dramapic_subs.segments import sound_segments
from dramapic_subs.turns import speech_turns

from .conftest import ROOT, run_cli

SOUND = ["speech", "song", "music", "noise", "nature"]


def _analysis(tops: list[str | None], female: list[float]) -> Analysis:
    """One-second windows whose likeliest sound type is ``tops[i]`` (None: silent), at 0.8."""
    n = len(tops)
    sound = np.full((n, 5), np.nan)
    gender = np.full((n, 2), np.nan)
    for i, top in enumerate(tops):
        if top is not None:
            sound[i] = 0.05
            sound[i, SOUND.index(top)] = 0.8
            gender[i] = [female[i], 1 - female[i]]
    models = [ModelOutput("sound_type", "t", SOUND, 1024, 256, 1, sound),
              ModelOutput("gender", "t", ["female", "male"], 512, 128, 1, gender)]
    silent = np.array([t is None for t in tops])
    return Analysis(Path("a clip.mp4"), float(n), 2.0, 1.0, np.arange(n, dtype=float), np.arange(1, n + 1, dtype=float),
                    np.where(silent, -90.0, -20.0), silent, models)


def test_sound_segments_merge_runs_and_keep_silence():
    a = _analysis(["speech", "speech", None, "music", "music", "music", "speech"], [0.9] * 7)
    segs = [(s.label, s.start_s, s.end_s, s.probability) for s in sound_segments(a)]
    assert segs == [("speech", 0, 2, pytest.approx(0.8)), ("silence", 2, 3, None), ("music", 3, 6, pytest.approx(0.8)),
                    ("speech", 6, 7, pytest.approx(0.8))]


def test_speech_turns_span_speech_and_song_and_average_gender():
    a = _analysis(["speech", "song", "speech", "music", None, "speech", "speech"], [0.9, 0.7, 0.8, 0.1, 0, 0.2, 0.4])
    turns = speech_turns(a)
    assert [(t.start_s, t.end_s, t.label) for t in turns] == [(0, 3, "female"), (5, 7, "male")]
    # The turn's gender pools the windows' evidence: the mean of their log-odds.
    odds = np.exp(np.mean(np.log(np.array([0.9, 0.7, 0.8]) / np.array([0.1, 0.3, 0.2]))))
    assert turns[0].probability == pytest.approx(odds / (1 + odds))
    assert turns[1].gender == pytest.approx({"female": 0.29, "male": 0.71}, abs=0.01)


@pytest.fixture(scope="module")
def exported(drama, tmp_path_factory):
    out = tmp_path_factory.mktemp("segments")
    run_cli(drama.path, "--format", "json,csv,audacity,textgrid,rttm", "-o", out, "--quiet", check=True)
    return out


def _speech_span(drama) -> tuple[float, float]:
    (a, b), = [(a, b) for a, b, lab in drama.segments if lab == "speech"]
    return a, b


def test_csv_in_python_csv(drama, exported):
    with open(exported / "drama.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    sound = [r for r in rows if r["tier"] == "sound_type"]
    # The sound tier tiles the file: from 0, no gap, to its end.
    assert float(sound[0]["start"]) == 0 and float(sound[-1]["end"]) == pytest.approx(drama.duration, abs=0.01)
    assert all(a["end"] == b["start"] for a, b in zip(sound, sound[1:]))
    assert {r["label"] for r in sound} >= {"speech", "music", "silence"}
    assert all(r["probability"] == "" for r in sound if r["label"] == "silence")
    assert all(0 < float(r["probability"]) <= 1 for r in rows if r["label"] != "silence")
    # The dev speech is one long speech segment, whose turn is one voice.
    a, b = _speech_span(drama)
    longest = max((r for r in sound if r["label"] == "speech"), key=lambda r: float(r["end"]) - float(r["start"]))
    assert float(longest["start"]) <= a + 1 and float(longest["end"]) >= b - 2
    gender = [r for r in rows if r["tier"] == "gender"]
    assert gender and all(r["label"] in ("female", "male") for r in gender)
    assert max(float(r["end"]) - float(r["start"]) for r in gender) >= 9


def test_textgrid_in_praat(drama, exported):
    parselmouth = pytest.importorskip("parselmouth", reason="praat-parselmouth is not installed")
    from parselmouth.praat import call

    grid = parselmouth.read(str(exported / "drama.TextGrid"))
    assert call(grid, "Get number of tiers") == 2
    assert [call(grid, "Get tier name", k) for k in (1, 2)] == ["sound_type", "gender"]
    assert call(grid, "Get total duration") == pytest.approx(drama.duration, abs=0.01)

    def label_at(tier: int, t: float) -> str:
        return call(grid, "Get label of interval", tier, call(grid, "Get interval at time", tier, t))

    assert re.fullmatch(r"speech \d+%", label_at(1, 6.0))
    assert label_at(1, 13.5) == "silence"
    assert re.fullmatch(r"(female|male) \d+%", label_at(2, 6.0))
    assert label_at(2, 20.0) == ""  # no voice over the music: an empty interval
    # Same segments as the CSV, interval for interval.
    with open(exported / "drama.csv", newline="", encoding="utf-8") as f:
        n_sound = sum(r["tier"] == "sound_type" for r in csv.DictReader(f))
    assert call(grid, "Get number of intervals", 1) == n_sound


def test_rttm_in_pyannote(drama, exported):
    util = pytest.importorskip("pyannote.database.util", reason="pyannote.database is not installed")
    annotations = util.load_rttm(str(exported / "drama.rttm"))
    assert list(annotations) == ["drama"]
    turns = annotations["drama"]
    assert set(turns.labels()) <= {"female", "male"}
    a, b = _speech_span(drama)
    speech_time = sum(min(s.end, b) - max(s.start, a) for s in turns.itersegments() if s.end > a and s.start < b)
    assert speech_time >= 0.75 * (b - a)
    assert turns.get_timeline().duration() <= (b - a) + 6  # little voice found over music, tone and noise


def test_audacity_labels_follow_the_label_track_grammar(drama, exported):
    # Audacity's label file: one label per line, "start<TAB>end<TAB>text", seconds as decimals.
    lines = (exported / "drama.labels.txt").read_text(encoding="utf-8").splitlines()
    grammar = re.compile(r"(\d+\.\d+)\t(\d+\.\d+)\t([^\t\n]*)")
    parsed = [grammar.fullmatch(line) for line in lines]
    assert lines and all(parsed), [line for line, m in zip(lines, parsed) if not m]
    spans = [(float(m[1]), float(m[2]), m[3]) for m in parsed]
    assert all(a <= b <= drama.duration + 0.01 for a, b, _ in spans)
    assert [a for a, _, _ in spans] == sorted(a for a, _, _ in spans)
    assert any(t.startswith("speech ") for _, _, t in spans) and any(t.split()[0] in ("female", "male") for *_, t in spans)


def test_python_api_segments_and_save(drama, tmp_path):
    result = dramapic_subs.analyze(drama.path)
    tiers = result.segments
    assert set(tiers) == {"sound_type", "gender"}
    assert tiers["sound_type"][0].start_s == 0 and tiers["sound_type"][-1].end_s == pytest.approx(drama.duration)
    assert result.save(tmp_path / "x.TextGrid").read_text(encoding="utf-8").startswith('File type = "ooTextFile"')
    assert result.save(tmp_path / "x.labels.txt").read_text(encoding="utf-8").count("\t") >= 2
    assert result.render("rttm").startswith("SPEAKER drama 1 ")


def test_example_turns_have_the_speakers_gender(tmp_path):
    """The shipped example: each scripted speaker's turn carries that speaker's gender."""
    truth = json.loads((ROOT / "examples" / "example.truth.json").read_text())
    run_cli(ROOT / "examples" / "example.mp4", "--format", "csv", "-o", tmp_path, "--quiet", check=True)
    with open(tmp_path / "example.csv", newline="", encoding="utf-8") as f:
        turns = [r for r in csv.DictReader(f) if r["tier"] == "gender"]
    for seg in truth:
        sound, _, who = seg["label"].partition("/")
        if not who:
            continue
        inside = [r for r in turns if float(r["start"]) < seg["end"] and float(r["end"]) > seg["start"]]
        covered = {lab: sum(min(float(r["end"]), seg["end"]) - max(float(r["start"]), seg["start"])
                            for r in inside if r["label"] == lab) for lab in ("female", "male")}
        assert covered[who] >= 0.75 * (seg["end"] - seg["start"]), (seg, inside)
