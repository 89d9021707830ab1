"""Real media for the tests, built with ffmpeg from ../shared/data clips, tones and noise.

The dev split is used: these tests check behaviour on recordings the models
never saw. Everything is written under pytest's temporary folders.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dramapic_subs.media import find_ffmpeg, read_audio

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DRAMAPIC_DATA", ROOT.parent / "shared" / "data"))
SR = 16000
# The bundles under test are this checkout's: in an editable install the package's default models
# folder is the installed checkout's, so a worktree with retrained bundles would test another's.
# Set before any test runs; the CLI's child processes inherit it.
if (ROOT / "models" / "gender.json").is_file():
    os.environ.setdefault("DRAMAPIC_MODELS", str(ROOT / "models"))


@dataclass(frozen=True)
class Clip:
    """A built test video and the known timeline of its soundtrack (seconds)."""

    path: Path
    duration: float
    segments: list[tuple[float, float, str]]

    def windows_inside(self, label: str, margin: float = 1.5) -> list[tuple[float, float]]:
        return [(a + margin, b - margin) for a, b, lab in self.segments if lab == label]


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return find_ffmpeg()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "manifest.csv").is_file():
        pytest.skip(f"labelled data not found at {DATA} (set DRAMAPIC_DATA)")
    return DATA


def dev_rows(data_dir: Path, source: str, **match: str) -> list[dict]:
    with open(data_dir / "manifest.csv", newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f)
                if r["split"] == "dev" and r["source"] == source and all(r[k] == v for k, v in match.items())]


def dev_audio(data_dir: Path, source: str, seconds: float, *, offset: float = 0.0, **match: str) -> np.ndarray:
    """``seconds`` of audio from dev clips of one source, concatenated in manifest order."""
    out, need = [], int(seconds * SR)
    for row in dev_rows(data_dir, source, **match):
        y = read_audio(data_dir / row["path"], sr=SR)[int(offset * SR):]
        out.append(y)
        need -= len(y)
        if need <= 0:
            break
    return np.concatenate(out)[: int(seconds * SR)]


def tone(seconds: float, f0: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.2 * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 5))).astype(np.float32)


def white_noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def mux(ffmpeg: str, audio: np.ndarray, out: Path, *, size: str = "320x240", video: bool = True) -> Path:
    """Write ``audio`` as AAC in an mp4 under a moving test picture."""
    wav = out.with_suffix(".wav")
    sf.write(wav, audio, SR)
    dur = len(audio) / SR
    args = [ffmpeg, "-v", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"testsrc2=s={size}:r=10:d={dur:.3f}"]
    args += ["-i", str(wav)]
    if video:
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    args += ["-c:a", "aac", "-b:a", "96k", "-shortest", str(out)]
    subprocess.run(args, check=True)
    wav.unlink()
    return out


@pytest.fixture(scope="session")
def drama(tmp_path_factory, data_dir, ffmpeg) -> Clip:
    """37 s: 12 s dev speech, 3 s silence, 12 s dev music, a harmonic tone, white noise."""
    parts = [
        ("speech", dev_audio(data_dir, "librispeech_resemblyzer", 12.0)),
        ("silence", np.zeros(3 * SR, np.float32)),
        ("music", dev_audio(data_dir, "zento_rusted_music", 12.0, offset=30.0)),
        ("tone", tone(5.0)),
        ("noise", white_noise(5.0)),
    ]
    segments, t = [], 0.0
    for label, y in parts:
        segments.append((t, t + len(y) / SR, label))
        t += len(y) / SR
    path = mux(ffmpeg, np.concatenate([y for _, y in parts]), tmp_path_factory.mktemp("drama") / "drama.mp4")
    return Clip(path, t, segments)


def run_cli(*args: str | os.PathLike, check: bool = False, **kw) -> subprocess.CompletedProcess:
    """Run ``python -m dramapic_subs`` as a user would, capturing its output."""
    proc = subprocess.run([sys.executable, "-m", "dramapic_subs", *map(str, args)],
                          capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def assert_example_labels(doc_path: Path, share: float = 0.75) -> None:
    """The CLI's JSON for examples/example.mp4 names each segment's sound (and voice) in ``share`` of its cues.

    Cues within 1.5 s of a cut are left out: their windows straddle it.
    """
    truth = json.loads((ROOT / "examples" / "example.truth.json").read_text())
    doc = json.loads(doc_path.read_text(encoding="utf-8"))
    for seg in truth:
        sound, _, who = seg["label"].partition("/")
        inside = [w for w in doc["windows"]
                  if seg["start"] + 1.5 <= (w["start"] + w["end"]) / 2 <= seg["end"] - 1.5]
        if sound == "silence":
            continue
        tops = [max(w["sound_type"], key=w["sound_type"].get) for w in inside if w["sound_type"]]
        assert tops.count(sound) / len(tops) >= share, (seg, tops)
        if who:
            genders = [max(w["gender"], key=w["gender"].get) for w in inside if w["gender"]]
            assert genders.count(who) / len(genders) >= share, (seg, genders)
