"""Input formats: channel layouts, sample rates and variable frame rate.

Each input is made by ffmpeg from the same 15 s soundtrack (12 s of dev
speech, then a 3 s harmonic tone) and must be captioned from 0 to its end,
with the same sound types as the plain 16 kHz mono file; the input is never
modified.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dramapic_subs.media import iter_audio, probe

from .conftest import SR, dev_audio, run_cli, tone

SPEECH_S, TONE_S = 12.0, 3.0

# name -> (file name, ffmpeg output options). The signal sits in one channel only
# where there are several (the right one; the centre of 5.1, where films put dialogue),
# so a downmix that dropped or cancelled a channel would show as silence.
FORMATS = {
    "mono 16 kHz": ("mono16k.wav", ["-af", "aformat=channel_layouts=mono:sample_rates=16000", "-c:a", "pcm_s16le"]),
    "mono 44.1 kHz aac": ("mono.m4a", ["-af", "aformat=channel_layouts=mono:sample_rates=44100", "-c:a", "aac",
                                       "-b:a", "96k"]),
    "stereo, right channel only": ("stereo.m4a", ["-af", "pan=stereo|c0=0*c0|c1=c0,aformat=sample_rates=48000",
                                                  "-c:a", "aac", "-b:a", "128k"]),
    "5.1, centre channel only": ("surround.mkv", ["-af", "pan=5.1|FC=c0,aformat=sample_rates=48000",
                                                  "-c:a", "ac3", "-b:a", "384k"]),
    "8 kHz": ("phone8k.wav", ["-af", "aformat=channel_layouts=mono:sample_rates=8000", "-c:a", "pcm_s16le"]),
    "96 kHz 24-bit stereo": ("hires96k.flac", ["-af", "pan=stereo|c0=c0|c1=c0,aformat=sample_rates=96000",
                                               "-c:a", "flac", "-sample_fmt", "s32"]),
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def soundtrack(tmp_path_factory, data_dir) -> Path:
    y = np.concatenate([dev_audio(data_dir, "librispeech_resemblyzer", SPEECH_S), tone(TONE_S, 196.0)])
    path = tmp_path_factory.mktemp("src") / "soundtrack.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    return path


def _caption(path: Path) -> dict:
    before = _sha256(path)
    proc = run_cli(path, "--format", "json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    assert _sha256(path) == before, "input was modified"
    return json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))


def _top_labels(doc: dict) -> list[str | None]:
    return [max(w["sound_type"], key=w["sound_type"].get) if w["sound_type"] else None for w in doc["windows"]]


@pytest.fixture(scope="module")
def reference(soundtrack) -> dict:
    return _caption(soundtrack)


@pytest.mark.parametrize("name", list(FORMATS))
def test_channel_layouts_and_sample_rates(name, soundtrack, reference, ffmpeg, tmp_path):
    filename, options = FORMATS[name]
    src = tmp_path / filename
    subprocess.run([ffmpeg, "-v", "error", "-i", str(soundtrack), *options, str(src)], check=True)
    info = probe(src, ffmpeg=ffmpeg)
    assert info.has_audio and not info.has_video
    doc = _caption(src)

    # Captions tile the whole duration: from 0, no gap, to the end of the audio.
    assert doc["duration"] == pytest.approx(SPEECH_S + TONE_S, abs=0.1)
    windows = doc["windows"]
    assert len(windows) == int(np.ceil(doc["duration"] / doc["hop"] - 1e-9))
    assert windows[0]["start"] == 0 and windows[-1]["end"] == pytest.approx(doc["duration"], abs=1e-3)
    assert all(a["end"] == pytest.approx(b["start"]) for a, b in zip(windows, windows[1:]))

    # The sound is heard wherever it is in the layout, and heard as the same thing.
    assert sum(w["silence"] for w in windows) <= 1, [w["level_db"] for w in windows]
    # Compared where the truth is clear: windows wholly inside the speech. The tone after it is none of
    # the five sound types; the model's guess among them there shifts with resampling and is not asked.
    ref, got = _top_labels(reference), _top_labels(doc)
    n = min(len(ref), len(got))
    in_speech = [i for i in range(n) if windows[i]["end"] + 0.5 <= SPEECH_S]
    agree = np.mean([ref[i] == got[i] for i in in_speech])
    assert agree >= 0.9, (ref, got)
    speech = [lab for w, lab in zip(windows, got) if w["end"] <= SPEECH_S - 1]
    assert speech.count("speech") >= 0.7 * len(speech), speech


def _frame_times(ffmpeg: str, path: Path) -> np.ndarray:
    """Presentation times (s) of every video frame, as ffmpeg's showinfo prints them."""
    proc = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-vf", "showinfo",
                           "-f", "null", "-"], capture_output=True, text=True, check=True)
    return np.array([float(t) for t in re.findall(r"pts_time:\s*([-\d.]+)", proc.stderr)])


def _audio(ffmpeg: str, path: Path) -> np.ndarray:
    return np.concatenate(list(iter_audio(path, ffmpeg=ffmpeg, sr=SR)))


def test_variable_frame_rate_video_burns_with_duration_and_audio_kept(tmp_path, ffmpeg):
    src = tmp_path / "vfr.mp4"
    # 30 fps test picture keeping 10 frames of every 30 plus one in the gap, and a
    # stretch with frame times off the grid: frame intervals of 33, 67, 300 and 333 ms.
    select = "select='lt(mod(n\\,30)\\,10)+eq(mod(n\\,30)\\,20)',setpts='PTS+0.013*gte(N\\,60)/TB'"
    subprocess.run([ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=12", "-f", "lavfi",
                    "-i", "sine=f=300:r=48000:d=12,volume=0.5", "-vf", select, "-fps_mode", "vfr",
                    "-video_track_timescale", "90000", "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", str(src)], check=True)
    times = _frame_times(ffmpeg, src)
    steps = np.round(np.diff(times), 3)
    assert len(set(steps.tolist())) >= 3, "the input is not variable frame rate"
    before = _sha256(src)
    proc = run_cli(src, "--burn", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert _sha256(src) == before, "input was modified"
    out = tmp_path / "vfr.subtitled.mp4"
    info_in, info_out = probe(src, ffmpeg=ffmpeg), probe(out, ffmpeg=ffmpeg)
    assert info_out.has_video and info_out.has_audio
    assert info_out.duration_s == pytest.approx(info_in.duration_s, abs=0.1)
    # Frames keep their times (no frame-rate conversion shifting or padding them) ...
    out_times = _frame_times(ffmpeg, out)
    assert out_times[0] == pytest.approx(times[0], abs=0.02)
    assert out_times[-1] == pytest.approx(times[-1], abs=0.05)
    assert len(out_times) == pytest.approx(len(times), abs=2)
    # ... and the soundtrack is the same, sample for sample (it is copied).
    a, b = _audio(ffmpeg, src), _audio(ffmpeg, out)
    assert len(b) == pytest.approx(len(a), abs=0.02 * SR)
    n = min(len(a), len(b))
    assert np.max(np.abs(a[:n] - b[:n])) < 1e-3
