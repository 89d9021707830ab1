"""The sung-voice statistics of the song-feature experiment (tools/song_features_loco.py; not product features)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dramapic_subs.features import _COL, _FRAME_COLS, VOICED_MIN, FeatureSpec
from dramapic_subs.windows import make_grid

from .conftest import SR, dev_audio

GRID = make_grid(sr=SR, window_s=2.0, hop_s=1.0)
_spec = importlib.util.spec_from_file_location("song_features_loco",
                                               Path(__file__).resolve().parents[1] / "tools" / "song_features_loco.py")
S = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(S)


def sung(seconds: float = 8.0, f0: float = 220.0, vibrato_st: float = 0.3, vibrato_hz: float = 5.5) -> np.ndarray:
    """A sung-like line: notes of a scale held 0.5 s each, with vibrato, as harmonics."""
    t = np.arange(int(seconds * SR)) / SR
    steps = np.array([0, 2, 4, 5, 7, 5, 4, 2])
    notes = f0 * 2 ** (steps[(t / 0.5).astype(int) % len(steps)] / 12)
    freq = notes * 2 ** (vibrato_st / 12 * np.sin(2 * np.pi * vibrato_hz * t))
    phase = 2 * np.pi * np.cumsum(freq) / SR
    return (0.1 * sum(np.sin(h * phase) / h for h in range(1, 8))).astype(np.float32)


def columns(y: np.ndarray, n_fft: int = 1024) -> dict[str, np.ndarray]:
    fz = S.SongStats(FeatureSpec(n_fft), GRID)
    X = S.WindowFeatures.concat([fz.push(y), fz.finish()]).X[1:-1]  # whole windows only
    return {c: X[:, i] for i, c in enumerate(S.SONG_FEATURES)}


@pytest.mark.parametrize("n_fft", [512, 1024])
def test_sung_line_holds_notes_longer_than_speech(data_dir, n_fft):
    song = columns(sung(), n_fft)
    speech = columns(dev_audio(data_dir, "librispeech_resemblyzer", 12.0), n_fft)
    assert song["f0_held_frac"].mean() > 0.8 > speech["f0_held_frac"].mean() + 0.15
    assert song["f0_held_run_s"].mean() > 2 * speech["f0_held_run_s"].mean()
    assert song["voiced_long_frac"].mean() > 0.95 > speech["voiced_long_frac"].mean()
    assert song["voicing_changes_hz"].mean() < 1.0 < speech["voicing_changes_hz"].mean()
    assert song["vibrato_ratio"].mean() > 0.6 > speech["vibrato_ratio"].mean()


def test_vibrato_and_tuning():
    wobbly, steady = columns(sung(vibrato_st=0.3)), columns(sung(vibrato_st=0.0))
    assert wobbly["vibrato_ratio"].mean() > steady["vibrato_ratio"].mean() + 0.2
    assert wobbly["vibrato_depth_st"].mean() > 0.15 > steady["vibrato_depth_st"].mean()
    # Steady notes of one scale: every F0 sits on the same semitone grid.
    assert steady["tuning_strength"].mean() > 0.8 > wobbly["tuning_strength"].mean()


def test_silence_gives_zero_song_columns():
    quiet = columns(np.zeros(4 * SR, np.float32))
    assert all(np.all(v == 0) for v in quiet.values())


def _run_lengths(mask) -> list[int]:
    runs, k = [], 0
    for m in list(mask) + [False]:
        if m:
            k += 1
        elif k:
            runs.append(k)
            k = 0
    return runs


def _reference_song(voicing: np.ndarray, log2_f0: np.ndarray, frame_rate: float) -> list[float]:
    """``features._song_stats`` of one window, with plain loops."""
    n = len(voicing)
    if n < 2:
        return [0.0] * len(S.SONG_FEATURES)
    voiced = voicing >= VOICED_MIN
    semis = log2_f0.astype(np.float64) * 12
    pairs = [voiced[i] and voiced[i + 1] for i in range(n - 1)]
    held = [pairs[i] and abs(semis[i + 1] - semis[i]) < S.HELD_SLOPE_ST_S / frame_rate for i in range(n - 1)]
    held_frac = sum(held) / max(sum(pairs), 1)
    held_run = (max(_run_lengths(held), default=-1) + 1) / frame_rate
    runs = _run_lengths(voiced)
    voiced_run = max(runs, default=0) / frame_rate
    long_frac = sum(r for r in runs if r >= S.LONG_VOICED_S * frame_rate) / max(voiced.sum(), 1)
    changes = sum(voiced[i] != voiced[i + 1] for i in range(n - 1)) * frame_rate / n
    ratio = depth = 0.0
    span = max(3, int(round(S.TREND_S * frame_rate)) | 1)
    if n >= span + 8:
        dev = []
        for i in range(n - span + 1):
            seg, ok = semis[i:i + span], voiced[i:i + span].all()
            ok = ok and seg.max() - seg.min() <= S.VIBRATO_RANGE_ST
            dev.append(semis[i + span // 2] - seg.mean() if ok else 0.0)
        dev = np.array(dev)
        count = sum(1 for i in range(n - span + 1) if voiced[i:i + span].all()
                    and np.ptp(semis[i:i + span]) <= S.VIBRATO_RANGE_ST)
        if count >= 8:
            spec = np.abs(np.fft.rfft(dev * np.hanning(len(dev)))) ** 2
            freqs = np.fft.rfftfreq(len(dev), 1.0 / frame_rate)
            ratio = spec[(freqs >= 4) & (freqs <= 7)].sum() / (spec[(freqs >= 1) & (freqs <= 15)].sum() + 1e-10)
            depth = np.sqrt((dev ** 2).sum() / count)
    tuning = abs(np.exp(2j * np.pi * semis[voiced]).mean()) if voiced.sum() >= 3 else 0.0
    return [held_frac, held_run if held_run > 0 else 0.0, voiced_run, long_frac, changes, ratio, depth, tuning]


@pytest.mark.parametrize("n_frames", [1, 2, 5, 9, 125, 250])
def test_batched_song_stats_equal_plain_loops(n_frames):
    rng = np.random.default_rng(n_frames)
    frames = rng.normal(size=(7, n_frames, len(_FRAME_COLS))).astype(np.float32)
    frames[:, :, _COL["voicing"]] = rng.uniform(0, 1, size=(7, n_frames)) * np.linspace(0.2, 1.5, 7)[:, None]
    frames[:, :, _COL["log2_f0"]] = rng.uniform(6.5, 8.5, size=(7, n_frames))
    # and a sung window: voiced throughout, held notes with vibrato, a change of note halfway.
    t = np.arange(n_frames) / 125.0
    frames[0, :, _COL["voicing"]] = 0.9
    frames[0, :, _COL["log2_f0"]] = 7.5 + (0.3 * np.sin(2 * np.pi * 5.5 * t) + 2 * (t > t[-1] / 2)) / 12
    got = S.song_stats(frames[:, :, _COL["voicing"]], frames[:, :, _COL["log2_f0"]], 125.0)
    for w in range(7):
        want = _reference_song(frames[w, :, _COL["voicing"]], frames[w, :, _COL["log2_f0"]], 125.0)
        np.testing.assert_allclose(got[w], want, rtol=1e-6, atol=1e-9)
