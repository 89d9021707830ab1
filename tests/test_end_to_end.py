"""The whole path on a built video: CLI -> SRT/VTT/JSON -> burned mp4."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pysrt
import pytest

from dramapic_subs.media import find_ffmpeg, probe

from .conftest import run_cli


@pytest.fixture(scope="module")
def outputs(drama, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    before = hashlib.sha256(drama.path.read_bytes()).hexdigest()
    proc = run_cli(drama.path, "--burn", "--format", "srt,vtt,json", "-o", out, "--quiet", check=True)
    assert proc.stderr == ""
    assert hashlib.sha256(drama.path.read_bytes()).hexdigest() == before, "input was modified"
    return out


def _window_labels(doc: dict, spans: list[tuple[float, float]]) -> list[str]:
    labels = []
    for w in doc["windows"]:
        centre = (w["start"] + w["end"]) / 2
        if any(a <= centre <= b for a, b in spans) and w["sound_type"]:
            labels.append(max(w["sound_type"], key=w["sound_type"].get))
    return labels


def test_srt_parses_tiles_duration_without_overlap(drama, outputs):
    subs = pysrt.open(str(outputs / "drama.srt"), encoding="utf-8")
    assert len(subs) == pytest.approx(drama.duration, abs=1.01)
    assert subs[0].start.ordinal == 0
    for a, b in zip(subs, subs[1:]):
        assert a.end.ordinal <= b.start.ordinal, "cues overlap"
        assert b.start.ordinal - a.end.ordinal <= 1, "gap between cues"
    assert subs[-1].end.ordinal / 1000 == pytest.approx(drama.duration, abs=0.05)
    assert all(s.text.strip() for s in subs)


def test_probabilities_are_distributions(outputs):
    doc = json.loads((outputs / "drama.json").read_text(encoding="utf-8"))
    assert set(doc["models"]) == {"sound_type", "gender"}
    assert doc["models"]["sound_type"]["n_fft"] == 1024 and doc["models"]["gender"]["n_fft"] == 512
    assert doc["models"]["sound_type"]["hop"] == 512 and doc["models"]["gender"]["hop"] == 256
    classified = [w for w in doc["windows"] if not w["silence"]]
    assert len(classified) > 0.8 * len(doc["windows"])
    for w in classified:
        assert set(w["sound_type"]) == {"speech", "song", "music", "noise", "nature"}
        assert set(w["gender"]) == {"female", "male"}
        for probs in (w["sound_type"], w["gender"]):
            assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
            assert all(0.0 <= p <= 1.0 for p in probs.values())


def test_speech_is_speech_and_music_is_not(drama, outputs):
    doc = json.loads((outputs / "drama.json").read_text(encoding="utf-8"))
    speech = _window_labels(doc, drama.windows_inside("speech"))
    music = _window_labels(doc, drama.windows_inside("music"))
    assert len(speech) >= 8 and len(music) >= 8
    assert speech.count("speech") / len(speech) >= 0.8, speech
    assert music.count("speech") / len(music) <= 0.2, music


def test_silence_is_marked_and_not_classified(drama, outputs):
    doc = json.loads((outputs / "drama.json").read_text(encoding="utf-8"))
    (a, b), = [(a, b) for a, b, lab in drama.segments if lab == "silence"]
    half = doc["window"] / 2
    # Cues whose whole window lies in the gap must be silent; no cue away from it may be.
    inside = [w for w in doc["windows"] if (w["start"] + w["end"]) / 2 - half >= a
              and (w["start"] + w["end"]) / 2 + half <= b]
    silent = [w for w in doc["windows"] if w["silence"]]
    assert inside and all(w["silence"] for w in inside)
    assert all(a - half <= w["start"] and w["end"] <= b + half for w in silent)
    assert all(w["sound_type"] is None and w["gender"] is None for w in silent)
    assert all(w["text"] == "(silence)" for w in silent)


def test_json_and_vtt_match_srt(outputs):
    subs = pysrt.open(str(outputs / "drama.srt"), encoding="utf-8")
    doc = json.loads((outputs / "drama.json").read_text(encoding="utf-8"))
    assert [s.text for s in subs] == [w["text"] for w in doc["windows"]]
    assert [s.start.ordinal for s in subs] == [round(w["start"] * 1000) for w in doc["windows"]]
    assert [s.end.ordinal for s in subs] == [round(w["end"] * 1000) for w in doc["windows"]]
    vtt = (outputs / "drama.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT")
    assert vtt.count(" --> ") == len(subs)
    assert subs[0].text in vtt


def test_cue_text_puts_top_labels_first(outputs):
    doc = json.loads((outputs / "drama.json").read_text(encoding="utf-8"))
    shown = 0
    for w in doc["windows"]:
        if w["silence"]:
            continue
        sound, *gender = w["text"].split(" | ")
        top = max(w["sound_type"], key=w["sound_type"].get)
        label, pct = sound.split(" · ")[0].split()
        # The JSON keeps 4 decimals, the text rounds the unrounded value: 0.39496 shows as 39%, stores as 0.3950.
        assert label == top and abs(int(pct.rstrip("%")) - 100 * w["sound_type"][top]) <= 0.51
        if gender:  # shown only where a voice is likely; the JSON keeps it everywhere
            assert gender[0].split()[0] == max(w["gender"], key=w["gender"].get)
            shown += 1
    assert shown >= 8  # the 12 s of speech


def test_burned_video_keeps_duration_audio_and_shows_captions(drama, outputs):
    from moviepy import VideoFileClip

    burned = outputs / "drama.subtitled.mp4"
    info = probe(burned, ffmpeg=find_ffmpeg())
    assert info.has_audio and info.has_video
    assert info.duration_s == pytest.approx(drama.duration, abs=0.15)
    assert not list(outputs.glob(".dramapic-*")), "temporary file left behind"
    with VideoFileClip(str(drama.path)) as a, VideoFileClip(str(burned)) as b:
        t = 5.05
        fa, fb = a.get_frame(t).astype(int), b.get_frame(t).astype(int)
    changed = np.abs(fa - fb).max(axis=2) > 80
    h = changed.shape[0]
    assert changed[int(0.75 * h):].mean() > 0.01, "no caption drawn at the bottom"
    assert changed[: int(0.5 * h)].mean() < 0.002, "picture changed away from the captions"


def test_audio_only_input_burns_onto_a_blank_picture(tmp_path, ffmpeg):
    from .conftest import mux, tone

    wav = mux(ffmpeg, tone(3.0), tmp_path / "song.m4a", video=False)
    assert run_cli(wav, "--burn", "--quiet").returncode == 0
    info = probe(tmp_path / "song.subtitled.mp4", ffmpeg=ffmpeg)
    assert info.has_video and (info.width, info.height) == (1280, 720)
    assert info.has_audio and info.duration_s == pytest.approx(3.0, abs=0.15)


def test_one_bad_input_does_not_stop_the_others(tmp_path, ffmpeg):
    from .conftest import mux, tone

    good = mux(ffmpeg, tone(3.0), tmp_path / "good.mp4")
    proc = run_cli(tmp_path / "missing.mp4", good, "--quiet")
    assert proc.returncode == 1
    assert "missing.mp4" in proc.stderr and proc.stderr.count("\n") == 1
    assert (tmp_path / "good.srt").is_file()


@pytest.fixture(scope="module")
def placed(tmp_path_factory, ffmpeg):
    """A 4 s clip burned twice: default placement, and at the top at twice the size."""
    from .conftest import mux, tone

    folder = tmp_path_factory.mktemp("placed")
    src = mux(ffmpeg, tone(4.0), folder / "clip.mp4")
    run_cli(src, "--burn", "--quiet", "-o", folder, check=True)
    (folder / "clip.subtitled.mp4").rename(folder / "bottom.mp4")
    run_cli(src, "--burn", "--embed", "--position", "top", "--font-size", "12", "--quiet", "--overwrite",
            "-o", folder, check=True)
    return folder


def _caption_rows(folder, burned: str) -> np.ndarray:
    """Rows of the frame at 1.5 s that the burned captions changed (bool per row)."""
    from moviepy import VideoFileClip

    with VideoFileClip(str(folder / "clip.mp4")) as a, VideoFileClip(str(folder / burned)) as b:
        fa, fb = a.get_frame(1.5).astype(int), b.get_frame(1.5).astype(int)
    return (np.abs(fa - fb).max(axis=2) > 80).any(axis=1)


def test_burn_at_the_top_in_a_larger_font(placed):
    bottom, top = _caption_rows(placed, "bottom.mp4"), _caption_rows(placed, "clip.subtitled.mp4")
    h = len(top)
    assert bottom[int(0.75 * h):].sum() >= 5 and not bottom[: int(0.5 * h)].any()
    assert top[: int(0.25 * h)].sum() >= 5 and not top[int(0.5 * h):].any()
    # --font-size 12 is twice the default 6 (% of the picture height): twice the ink's height.
    assert 1.5 <= top.sum() / bottom.sum() <= 2.6


def test_embedded_track_carries_top_placement_and_size(placed, ffmpeg):
    import subprocess

    ass = subprocess.run([ffmpeg, "-v", "error", "-i", str(placed / "clip.captioned.mp4"), "-map", "0:s:0",
                          "-f", "ass", "-"], capture_output=True, text=True, check=True).stdout
    style = next(line for line in ass.splitlines() if line.startswith("Style:")).split(",")
    assert style[18] == "8"  # ASS alignment: top centre, read back from the track's tx3g box
    assert int(style[2]) == pytest.approx(0.12 * 288, abs=1)  # font size in the 288-line script
