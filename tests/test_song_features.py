"""Sung against spoken voice: the held-note, legato, vibrato and tuning columns (features.SONG_FEATURES)."""
from __future__ import annotations

import numpy as np
import pytest

from dramapic_subs.features import BASE_FEATURES, SONG_FEATURES, FeatureSpec, feature_names, featurize
from dramapic_subs.representations import Spectral, from_card, shared_inputs
from dramapic_subs.windows import make_grid

from .conftest import SR, dev_audio

GRID = make_grid(sr=SR, window_s=2.0, hop_s=1.0)


def sung(seconds: float = 8.0, f0: float = 220.0, vibrato_st: float = 0.3, vibrato_hz: float = 5.5) -> np.ndarray:
    """A sung-like line: notes of a scale held 0.5 s each, with vibrato, as harmonics."""
    t = np.arange(int(seconds * SR)) / SR
    steps = np.array([0, 2, 4, 5, 7, 5, 4, 2])
    notes = f0 * 2 ** (steps[(t / 0.5).astype(int) % len(steps)] / 12)
    freq = notes * 2 ** (vibrato_st / 12 * np.sin(2 * np.pi * vibrato_hz * t))
    phase = 2 * np.pi * np.cumsum(freq) / SR
    return (0.1 * sum(np.sin(h * phase) / h for h in range(1, 8))).astype(np.float32)


def columns(y: np.ndarray, n_fft: int = 1024) -> dict[str, np.ndarray]:
    X = featurize(y, spec=FeatureSpec(n_fft), grid=GRID).X[1:-1]  # whole windows only
    names = feature_names()
    return {c: X[:, names.index(c)] for c in SONG_FEATURES}


def test_song_columns_come_after_the_older_ones():
    assert feature_names() == BASE_FEATURES + SONG_FEATURES


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


def test_silence_and_noise_give_zero_song_columns():
    quiet = columns(np.zeros(4 * SR, np.float32))
    assert all(np.all(v == 0) for k, v in quiet.items() if k != "voicing_changes_hz")


def test_spectral_input_selects_its_columns_by_name():
    rep = Spectral(FeatureSpec(512), tuple(BASE_FEATURES))
    X = np.arange(3 * len(feature_names()), dtype=np.float32).reshape(3, -1)
    np.testing.assert_array_equal(rep.select(X), X[:, :len(BASE_FEATURES)])
    assert rep.names == BASE_FEATURES
    full = Spectral(FeatureSpec(1024))
    assert full.select(X) is X and full.names == feature_names()
    assert from_card(full.card(), directory=None).names == feature_names()
    # A card written before the song columns names none: it takes the older ones.
    old = from_card({"kind": "spectral", "n_fft": 512, "sr": 16000}, directory=None)
    assert old.names == BASE_FEATURES and old.key == Spectral(FeatureSpec(512)).key  # one stream, whatever the columns


def test_a_stream_computes_the_song_columns_only_for_models_that_take_them():
    y = sung()
    spec = FeatureSpec(512)
    base, full = Spectral(spec, tuple(BASE_FEATURES)), Spectral(spec)
    some = Spectral(spec, tuple(BASE_FEATURES[:5] + SONG_FEATURES[:1]))

    def rows(rep):
        stream = rep.stream(GRID)
        return np.vstack([stream.push(y).X, stream.finish().X])

    n_base = len(BASE_FEATURES)
    skipped, computed = rows(base), rows(full)
    np.testing.assert_array_equal(skipped[:, :n_base], computed[:, :n_base])  # the model's own columns unchanged
    assert np.all(skipped[:, n_base:] == 0) and np.any(computed[:, n_base:] != 0)
    assert np.any(rows(some)[:, n_base:] != 0)
    # Two models on one stream: it computes the union of their columns.
    assert shared_inputs([base, some])[base.key].names == BASE_FEATURES + SONG_FEATURES[:1]
    assert shared_inputs([base, full])[base.key].names == feature_names()
    assert shared_inputs([base, base])[base.key] == base

