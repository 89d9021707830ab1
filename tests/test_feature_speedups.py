"""The fast paths of features.py compute what the shipped models were trained on.

The filter banks are built without librosa, the windows are pooled in
batches, frame levels and zero crossings are summed per hop chunk, the FFTs
run in cache-sized blocks, and BLAS runs single-threaded while frames are analysed;
each is checked here against the straightforward computation it replaces.
"""
from __future__ import annotations

import gc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.fft

from dramapic_subs import features as F
from dramapic_subs.windows import make_grid

from .conftest import SR, tone, white_noise


@pytest.mark.parametrize("n_fft", [256, 512, 1024, 2048])
def test_filter_banks_are_librosas(n_fft):
    librosa_filters = pytest.importorskip("librosa.filters")
    mel = librosa_filters.mel(sr=SR, n_fft=n_fft, n_mels=F.N_MELS)
    chroma = librosa_filters.chroma(sr=SR, n_fft=n_fft)
    np.testing.assert_allclose(F.mel_filters(SR, n_fft, F.N_MELS), mel, rtol=0, atol=1e-6)
    np.testing.assert_allclose(F.chroma_filters(SR, n_fft), chroma, rtol=0, atol=1e-6)
    analyzer = F.FrameAnalyzer(F.FeatureSpec(n_fft))
    dct = scipy.fft.dct(np.eye(F.N_MELS), type=2, norm="ortho", axis=0)[: F.N_MFCC]
    np.testing.assert_allclose(analyzer.dct, dct, rtol=0, atol=1e-6)


def _reference_pool(frames: np.ndarray, frame_rate: float) -> np.ndarray:
    """One window pooled the plain way, one numpy call per statistic (the code the models were trained with)."""
    col = F._COL
    stat = frames[:, [col[c] for c in F._STAT_COLS]]
    parts = [np.stack([stat.mean(axis=0), stat.std(axis=0)], axis=1).ravel()]
    m0 = col["mfcc1"]
    dmfcc = np.diff(frames[:, m0:m0 + 12], axis=0) if len(frames) > 1 else np.zeros((1, 12))
    parts.append(dmfcc.std(axis=0))
    chroma = frames[:, col["chroma0"]:col["chroma0"] + 12]
    parts.append([chroma.mean(), chroma.var(), chroma.std(axis=1).mean()])
    voicing, log2_f0 = frames[:, col["voicing"]], frames[:, col["log2_f0"]]
    voiced = voicing >= F.VOICED_MIN
    f0 = log2_f0[voiced]
    if len(f0) < 3:
        parts.append([voiced.mean(), voicing.mean(), 7.2, 7.2, 7.2, 0.0, 0.0])
    else:
        p10, med, p90 = np.percentile(f0, [10, 50, 90])
        jumps = np.abs(np.diff(log2_f0))[voiced[1:] & voiced[:-1]] * 12
        parts.append([voiced.mean(), voicing.mean(), med, p10, p90, f0.std() * 12,
                      np.median(jumps) if len(jumps) else 0.0])
    rms = frames[:, col["rms_db"]]
    pause = np.mean(rms < rms.max() - 15.0)
    if len(rms) < 8:
        parts.append([0.0, pause])
    else:
        env = rms - rms.mean()
        spec = np.abs(np.fft.rfft(env * np.hanning(len(env)))) ** 2
        freqs = np.fft.rfftfreq(len(env), 1.0 / frame_rate)
        total = spec[(freqs >= 0.5) & (freqs <= 20)].sum() + 1e-10
        parts.append([spec[(freqs >= 2) & (freqs <= 8)].sum() / total, pause])
    parts.append(_reference_song(voicing, log2_f0, frame_rate))
    return np.concatenate([np.asarray(p, np.float64).ravel() for p in parts])


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
        return [0.0] * len(F.SONG_FEATURES)
    voiced = voicing >= F.VOICED_MIN
    semis = log2_f0.astype(np.float64) * 12
    pairs = [voiced[i] and voiced[i + 1] for i in range(n - 1)]
    held = [pairs[i] and abs(semis[i + 1] - semis[i]) < F.HELD_SLOPE_ST_S / frame_rate for i in range(n - 1)]
    held_frac = sum(held) / max(sum(pairs), 1)
    held_run = (max(_run_lengths(held), default=-1) + 1) / frame_rate
    runs = _run_lengths(voiced)
    voiced_run = max(runs, default=0) / frame_rate
    long_frac = sum(r for r in runs if r >= F.LONG_VOICED_S * frame_rate) / max(voiced.sum(), 1)
    changes = sum(voiced[i] != voiced[i + 1] for i in range(n - 1)) * frame_rate / n
    ratio = depth = 0.0
    span = max(3, int(round(F.TREND_S * frame_rate)) | 1)
    if n >= span + 8:
        dev = []
        for i in range(n - span + 1):
            seg, ok = semis[i:i + span], voiced[i:i + span].all()
            ok = ok and seg.max() - seg.min() <= F.VIBRATO_RANGE_ST
            dev.append(semis[i + span // 2] - seg.mean() if ok else 0.0)
        dev = np.array(dev)
        count = sum(1 for i in range(n - span + 1) if voiced[i:i + span].all()
                    and np.ptp(semis[i:i + span]) <= F.VIBRATO_RANGE_ST)
        if count >= 8:
            spec = np.abs(np.fft.rfft(dev * np.hanning(len(dev)))) ** 2
            freqs = np.fft.rfftfreq(len(dev), 1.0 / frame_rate)
            ratio = spec[(freqs >= 4) & (freqs <= 7)].sum() / (spec[(freqs >= 1) & (freqs <= 15)].sum() + 1e-10)
            depth = np.sqrt((dev ** 2).sum() / count)
    tuning = abs(np.exp(2j * np.pi * semis[voiced]).mean()) if voiced.sum() >= 3 else 0.0
    return [held_frac, held_run if held_run > 0 else 0.0, voiced_run, long_frac, changes, ratio, depth, tuning]


@pytest.mark.parametrize("n_frames", [1, 2, 5, 9, 125, 250])
def test_batched_pooling_equals_plain_pooling(n_frames):
    rng = np.random.default_rng(n_frames)
    n_cols = len(F._FRAME_COLS)
    frames = rng.normal(size=(7, n_frames, n_cols)).astype(np.float32)
    # Pitch columns as the analyzer makes them: voicing in 0-1 (some windows
    # barely or not voiced), log2 F0 around 7-8 octaves.
    frames[:, :, F._COL["voicing"]] = rng.uniform(0, 1, size=(7, n_frames)) * np.linspace(0.2, 1.5, 7)[:, None]
    frames[:, :, F._COL["log2_f0"]] = rng.uniform(6.5, 8.5, size=(7, n_frames))
    # and a sung window: voiced throughout, held notes with vibrato, a change of note halfway.
    t = np.arange(n_frames) / 125.0
    frames[0, :, F._COL["voicing"]] = 0.9
    frames[0, :, F._COL["log2_f0"]] = 7.5 + (0.3 * np.sin(2 * np.pi * 5.5 * t) + 2 * (t > t[-1] / 2)) / 12
    got = F.pool_windows(frames, 125.0)
    assert got.shape == (7, len(F.feature_names())) and got.dtype == np.float32
    for w in range(7):
        np.testing.assert_allclose(got[w], _reference_pool(frames[w], 125.0), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(F.pool_window(frames[w], 125.0), got[w])


@pytest.mark.parametrize("n_fft", [512, 1024])
@pytest.mark.parametrize("window_s, hop_s, n_samples", [(1.0, 1.0, SR + 1), (1.0, 1.0, SR + 257), (0.1, 0.1, 1601),
                                                       (2.0, 1.0, 3 * SR + 1), (0.5, 0.5, 40)])
def test_every_window_gets_frames(n_fft, window_s, hop_s, n_samples):
    """A last window that holds no frame centre (window as long as the hop, a file a
    sample past a cue boundary) used to pool an empty slice and crash the run."""
    y = white_noise(n_samples / SR + 0.01)[:n_samples]
    grid = make_grid(sr=SR, window_s=window_s, hop_s=hop_s)
    out = F.featurize(y, spec=F.FeatureSpec(n_fft), grid=grid)
    assert len(out.X) == grid.n_cues(n_samples)
    assert np.isfinite(out.X).all() and np.isfinite(out.level_db).all()


@pytest.mark.parametrize("n_fft", [256, 512, 1024])
def test_frame_fast_paths_equal_the_plain_formulas(n_fft):
    """RMS and zero crossings per hop chunk, and the roll-off from block-wise
    spectra, give bit for bit what the plain per-frame formulas give."""
    # Silence, a tone and noise (with exact zeros and sign flips), over several
    # FFT blocks and a partial one.
    y = np.concatenate([np.zeros(SR // 2, np.float32), tone(2.0, 150.0), white_noise(2.0), tone(1.0, 900.0)])
    hop = n_fft // 4
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    analyzer = F.FrameAnalyzer(F.FeatureSpec(n_fft))
    assert len(frames) > analyzer.block and len(frames) % analyzer.block
    feats, _ = analyzer(frames, None)
    col = F._COL
    # A copy of the frames is no view of one signal: it takes the direct formulas.
    np.testing.assert_array_equal(F.FrameAnalyzer(F.FeatureSpec(n_fft))(frames.copy(), None)[0], feats)
    rms_db = 10 * np.log10(np.mean(frames ** 2, axis=1) + F._EPS)
    np.testing.assert_array_equal(feats[:, col["rms_db"]], rms_db.astype(np.float32))
    signs = np.signbit(frames)
    zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / (n_fft - 1)
    np.testing.assert_array_equal(feats[:, col["zcr"]], zcr.astype(np.float32))
    padded = np.zeros((len(frames), 2 * n_fft), np.float32)
    padded[:, :n_fft] = frames * analyzer.window
    parts = scipy.fft.rfft(padded, axis=1).view(np.float32) ** 2
    power = (parts[:, 0::2] + parts[:, 1::2])[:, ::2]
    cum = np.cumsum(power, axis=1)
    rolloff = np.argmax(cum >= 0.85 * cum[:, -1:], axis=1) / power.shape[1]
    np.testing.assert_array_equal(feats[:, col["rolloff"]], rolloff.astype(np.float32))


def test_blas_is_single_threaded_while_featurizers_live_and_restored_after():
    import threadpoolctl  # a dependency: without it OpenBLAS threads halve the analysis speed

    blas = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not blas.lib_controllers:
        pytest.skip("no BLAS library that threadpoolctl can see")

    def threads() -> list[int]:
        return [lib.get_num_threads() for lib in blas.lib_controllers]

    before = threads()
    seen = []
    real_call = F.FrameAnalyzer.__call__

    def spy(self, frames, prev):
        seen.append(threads())
        return real_call(self, frames, prev)

    F.FrameAnalyzer.__call__ = spy
    try:
        # As the pipeline does: featurizers made and finished in this thread,
        # blocks pushed from a pool, one thread per n_fft.
        grid = make_grid(sr=SR)
        featurizers = [F.StreamFeaturizer(F.FeatureSpec(n), grid) for n in (512, 1024)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            for block in (tone(3.0), white_noise(3.0)):
                list(pool.map(lambda fz: fz.push(block), featurizers))  # noqa: B023
        for fz in featurizers:
            fz.finish()
    finally:
        F.FrameAnalyzer.__call__ = real_call
    assert len(seen) >= 4 and all(n == 1 for counts in seen for n in counts), seen
    assert threads() == before
    # One dropped before it finished (an error mid-file) gives the threads back too.
    dropped = F.StreamFeaturizer(F.FeatureSpec(512), make_grid(sr=SR))
    assert all(n == 1 for n in threads())
    del dropped
    gc.collect()
    assert threads() == before
