"""The analysis's FFTs: scipy's results bit for bit, without the cost of importing scipy.fft."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.fft

from dramapic_subs import fft

from .conftest import mux, tone, white_noise


@pytest.mark.parametrize("shape, axis", [((300, 2048), 1), ((7, 4, 256), 2), ((5, 400), 1), ((3, 1024), 0)])
def test_rfft_is_scipys_bit_for_bit(shape, axis):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    ours = fft.rfft(x, axis=axis)
    assert ours.dtype == np.complex64
    np.testing.assert_array_equal(ours, scipy.fft.rfft(x, axis=axis, workers=1))


@pytest.mark.parametrize("n", [1024, 2048])
def test_irfft_of_a_power_spectrum_is_scipys_bit_for_bit(n):
    # The pitch path: a power spectrum held in the real part of a complex array.
    power = np.abs(scipy.fft.rfft(np.random.default_rng(2).standard_normal((64, n)).astype(np.float32), axis=1)) ** 2
    x = power.astype(np.complex64)
    before = x.copy()
    ours = fft.irfft(x, n, axis=1)
    np.testing.assert_array_equal(ours, scipy.fft.irfft(x, n, axis=1, workers=1))
    np.testing.assert_array_equal(x, before)  # the input is not written to


def test_irfft_refuses_a_length_that_would_pad_or_crop():
    with pytest.raises(ValueError, match="bins"):
        fft.irfft(np.zeros((2, 10), np.complex64), 2048, axis=1)


def test_analysis_runs_without_importing_scipy_fft(tmp_path, ffmpeg):
    """What the start-up saving rests on: decoding, features, VAD and encoder never load scipy.fft."""
    clip = mux(ffmpeg, np.concatenate([tone(3.0, 180.0), white_noise(3.0)]), tmp_path / "clip.mp4")
    code = ("import sys\n"
            "from dramapic_subs.pipeline import analyze, load_models\n"
            f"a = analyze({str(clip)!r}, models=load_models())\n"
            "assert len(a.start_s) >= 5, a.start_s\n"
            "print(sorted(k for k in sys.modules if k.startswith('scipy')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "scipy.fft" not in out.stdout and "scipy.special" not in out.stdout, out.stdout
