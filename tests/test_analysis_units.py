"""Windows, streaming features and smoothing, on signals whose answers are known."""
from __future__ import annotations

import numpy as np
import pytest

from dramapic_subs.errors import ParameterError
from dramapic_subs.features import FeatureSpec, StreamFeaturizer, WindowFeatures, feature_names, featurize
from dramapic_subs.smoothing import smooth_probabilities
from dramapic_subs.windows import make_grid

from .conftest import SR, tone, white_noise

GRID = make_grid(sr=SR, window_s=2.0, hop_s=1.0)


def test_cues_tile_the_signal():
    n = int(7.3 * SR)
    start, end = GRID.cue_times(n)
    assert len(start) == 8
    assert start[0] == 0 and end[-1] == pytest.approx(7.3)
    assert np.all(start[1:] == end[:-1])
    assert GRID.span(0, n) == (0, int(1.5 * SR))  # centred on 0.5 s, clipped at 0
    assert GRID.span(7, n) == (int(6.5 * SR), n)


@pytest.mark.parametrize("window, hop", [(1.0, 2.0), (0.0, 1.0), (2.0, -1.0), (60.0, 1.0)])
def test_bad_window_settings_are_parameter_errors(window, hop):
    with pytest.raises(ParameterError):
        make_grid(sr=SR, window_s=window, hop_s=hop)


def test_bad_n_fft_is_a_parameter_error():
    with pytest.raises(ParameterError):
        FeatureSpec(1000)


@pytest.mark.parametrize("n_fft", [512, 1024])
def test_streaming_equals_whole_signal(n_fft):
    y = np.concatenate([tone(3.3, 220.0), white_noise(2.9)])
    spec = FeatureSpec(n_fft)
    whole = featurize(y, spec=spec, grid=GRID)
    fz = StreamFeaturizer(spec, GRID)
    parts = [fz.push(y[i:i + 7777]) for i in range(0, len(y), 7777)] + [fz.finish()]
    streamed = WindowFeatures.concat(parts)
    assert whole.X.shape == (GRID.n_cues(len(y)), len(feature_names()))
    np.testing.assert_array_equal(whole.index, streamed.index)
    np.testing.assert_allclose(whole.X, streamed.X, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n_fft", [512, 1024])
@pytest.mark.parametrize("f0", [110.0, 220.0])
def test_pitch_of_a_harmonic_tone(n_fft, f0):
    X = featurize(tone(3.0, f0), spec=FeatureSpec(n_fft), grid=GRID).X
    col = dict(zip(feature_names(), X[1]))
    assert col["voiced_frac"] > 0.9
    assert 2 ** col["f0_median"] == pytest.approx(f0, rel=0.03)


def test_noise_is_unvoiced_and_flat():
    X = featurize(white_noise(3.0), spec=FeatureSpec(1024), grid=GRID).X
    col = dict(zip(feature_names(), X[1]))
    assert col["voiced_frac"] < 0.2
    assert col["flatness_mean"] > -0.5  # log10 of spectral flatness: white noise is near 0


def test_level_tracks_gain():
    y = white_noise(3.0)
    a = featurize(y, spec=FeatureSpec(1024), grid=GRID).level_db
    b = featurize(y * 0.1, spec=FeatureSpec(1024), grid=GRID).level_db
    np.testing.assert_allclose(a - b, 20.0, atol=0.1)


def test_smoothing_ignores_silent_windows():
    proba = np.array([[1.0, 0.0], [0.0, 1.0], [np.nan, np.nan], [1.0, 0.0]])
    valid = np.array([True, True, False, True])
    out = smooth_probabilities(proba, width=3, valid=valid)
    np.testing.assert_allclose(out[0], [0.5, 0.5])
    np.testing.assert_allclose(out[3], [1.0, 0.0])  # its silent neighbour does not count
    assert np.isnan(out[2]).all()
    np.testing.assert_allclose(out[valid].sum(axis=1), 1.0)


@pytest.mark.parametrize("n", [1, 2])
def test_smoothing_files_shorter_than_the_kernel(n):
    proba = np.tile([0.25, 0.75], (n, 1))
    out = smooth_probabilities(proba, width=5, valid=np.ones(n, bool))
    np.testing.assert_allclose(out, proba)
