"""Window features: one STFT per n_fft over the whole stream, pooled per window.

Frames are analysed once, in streaming order, on a global frame grid
(``hop = n_fft / 4``, centred frames as in ``librosa.stft(center=True)``);
each window then pools the frames whose centres fall inside it. Every
frame-level quantity (log-mel, MFCC, spectral shape, chroma, pitch) is read
off that single spectrum, so features cost little beyond the FFT itself.

Pitch comes from the autocorrelation of each frame, computed as the inverse
FFT of the same (zero-padded) power spectrum: ``librosa.yin`` per window would
be ~5x slower than the whole rest of the analysis.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.fft

from .errors import ParameterError
from .windows import WindowGrid

N_MELS = 40
N_MFCC = 20
F0_MIN_HZ = 60.0
F0_MAX_HZ = 500.0
SILENCE_FLOOR_DB = -50.0  # windows quieter than this (dBFS) are silence, not classified
VOICED_MIN = 0.45  # normalised autocorrelation peak above which a frame counts as voiced
SEED_BANDS_HZ = (0, 250, 500, 1000, 2000, 4000, 8000)
CONTRAST_BANDS_HZ = (0, 200, 400, 800, 1600, 3200, 8000)
_EPS = 1e-10
_PEAK_REACH = 12  # lags searched past the first strong one for the top of its peak
_FRAME_BLOCK = 2048  # frames per FFT call: bounds temporary memory


@dataclass(frozen=True)
class FeatureSpec:
    """Analysis settings a model was trained with.

    Attributes
    ----------
    n_fft : int
        FFT size in samples (a power of two, 256-8192).
    sr : int
        Sample rate in Hz.
    """

    n_fft: int
    sr: int = 16000

    def __post_init__(self) -> None:
        if self.n_fft < 256 or self.n_fft > 8192 or self.n_fft & (self.n_fft - 1):
            raise ParameterError(f"n_fft must be a power of two in 256-8192, got {self.n_fft}")

    @property
    def hop(self) -> int:
        """Frame hop in samples: n_fft / 4, as the seed research used."""
        return self.n_fft // 4


# Frame-level columns, in order.
_FRAME_SCALARS = ["rms_db", "zcr", "centroid", "bandwidth", "rolloff", "flatness"]
_FRAME_COLS = (
    _FRAME_SCALARS
    + [f"mfcc{i}" for i in range(N_MFCC)]
    + [f"contrast{i}" for i in range(len(CONTRAST_BANDS_HZ) - 1)]
    + [f"band{i}" for i in range(len(SEED_BANDS_HZ) - 1)]
    + [f"chroma{i}" for i in range(12)]
    + ["flux", "voicing", "log2_f0"]
)
_COL = {name: i for i, name in enumerate(_FRAME_COLS)}
_STAT_COLS = [c for c in _FRAME_COLS if not c.startswith("chroma") and c not in ("voicing", "log2_f0")]


def feature_names() -> list[str]:
    """Names of the pooled window features, in column order."""
    names = [f"{c}_{s}" for c in _STAT_COLS for s in ("mean", "std")]
    names += [f"dmfcc{i}_std" for i in range(1, 13)]
    names += ["chroma_mean", "chroma_var", "chroma_peakiness"]
    names += ["voiced_frac", "voicing_mean", "f0_median", "f0_p10", "f0_p90",
              "f0_std_st", "f0_jump_st"]
    names += ["mod_4hz_ratio", "pause_frac"]
    return names


class FrameAnalyzer:
    """Per-frame features from the frames' spectra (filters built once)."""

    def __init__(self, spec: FeatureSpec) -> None:
        import librosa  # heavy import, needed only for the filter banks

        n, sr = spec.n_fft, spec.sr
        self.spec = spec
        self.window = np.hanning(n + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa
        self.freqs = np.fft.rfftfreq(n, 1.0 / sr)
        self.mel = librosa.filters.mel(sr=sr, n_fft=n, n_mels=N_MELS).astype(np.float32)
        self.chroma = librosa.filters.chroma(sr=sr, n_fft=n).astype(np.float32)
        self.dct = scipy.fft.dct(np.eye(N_MELS), type=2, norm="ortho", axis=0)[:N_MFCC].astype(np.float32)
        # Autocorrelation of the window itself, to undo its taper on long lags.
        wac = np.fft.irfft(np.abs(np.fft.rfft(self.window, 2 * n)) ** 2)[:n]
        self.lag_min = int(sr / F0_MAX_HZ)
        self.lag_max = min(int(sr / F0_MIN_HZ), int(0.6 * n))
        self.wac = (wac / wac[0])[: self.lag_max + 2].astype(np.float32)

    @cached_property
    def _band_masks(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        def masks(edges: tuple[int, ...]) -> list[np.ndarray]:
            return [(self.freqs >= lo) & (self.freqs < hi if hi < edges[-1] else self.freqs <= hi)
                    for lo, hi in zip(edges[:-1], edges[1:])]
        return masks(SEED_BANDS_HZ), masks(CONTRAST_BANDS_HZ)

    def __call__(self, frames: np.ndarray, prev_logmel: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Features of a block of frames.

        Parameters
        ----------
        frames : np.ndarray, shape (F, n_fft)
            Raw (unwindowed) frames.
        prev_logmel : np.ndarray or None
            Log-mel of the frame just before this block, for spectral flux.

        Returns
        -------
        feats : np.ndarray, shape (F, len(_FRAME_COLS))
        last_logmel : np.ndarray, shape (N_MELS,)
        """
        n, sr = self.spec.n_fft, self.spec.sr
        # Zero-padded to 2n: its even bins are the n-point spectrum, and its
        # power gives the linear (not circular) autocorrelation for pitch.
        spec2 = scipy.fft.rfft(frames * self.window, 2 * n, axis=1, workers=1)
        power2 = spec2.real ** 2 + spec2.imag ** 2
        power = power2[:, ::2].astype(np.float32)
        mag = np.sqrt(power)
        out = np.empty((len(frames), len(_FRAME_COLS)), np.float32)

        out[:, _COL["rms_db"]] = 10 * np.log10(np.mean(frames ** 2, axis=1) + _EPS)
        signs = np.signbit(frames)
        out[:, _COL["zcr"]] = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
        nyq = sr / 2
        mag_sum = mag.sum(axis=1) + _EPS
        centroid = mag @ self.freqs / mag_sum
        out[:, _COL["centroid"]] = centroid / nyq
        spread = (mag * (self.freqs[None, :] - centroid[:, None]) ** 2).sum(axis=1) / mag_sum
        out[:, _COL["bandwidth"]] = np.sqrt(spread) / nyq
        cum = np.cumsum(power, axis=1)
        out[:, _COL["rolloff"]] = np.argmax(cum >= 0.85 * cum[:, -1:], axis=1) / power.shape[1]
        log_power = np.log(power + _EPS)
        out[:, _COL["flatness"]] = (log_power.mean(axis=1) - np.log(power.mean(axis=1) + _EPS)) / np.log(10)

        logmel = np.log(power @ self.mel.T + _EPS)
        i0 = _COL["mfcc0"]
        out[:, i0:i0 + N_MFCC] = logmel @ self.dct.T
        prev = logmel[:1] if prev_logmel is None else prev_logmel[None, :]
        diff = np.diff(np.vstack([prev, logmel]), axis=0)
        out[:, _COL["flux"]] = np.maximum(diff, 0).mean(axis=1)

        seed_masks, contrast_masks = self._band_masks
        for i, m in enumerate(seed_masks):
            out[:, _COL[f"band{i}"]] = np.log(mag[:, m].mean(axis=1) + _EPS)
        for i, m in enumerate(contrast_masks):
            band = np.sort(log_power[:, m], axis=1)
            k = max(1, band.shape[1] // 5)  # peaks vs valleys: top and bottom fifth
            out[:, _COL[f"contrast{i}"]] = band[:, -k:].mean(axis=1) - band[:, :k].mean(axis=1)

        chroma = power @ self.chroma.T
        c0 = _COL["chroma0"]
        out[:, c0:c0 + 12] = chroma / (chroma.max(axis=1, keepdims=True) + _EPS)

        voicing, log2_f0 = self._pitch(power2)
        out[:, _COL["voicing"]] = voicing
        out[:, _COL["log2_f0"]] = log2_f0
        return out, logmel[-1]

    def _pitch(self, power2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Voicing strength (0-1) and log2 F0 from the autocorrelation."""
        ac = scipy.fft.irfft(power2, axis=1, workers=1)[:, : self.lag_max + 2]
        ac = ac / (ac[:, :1] + _EPS) / self.wac[None, :]
        lo, hi = self.lag_min, self.lag_max
        seg = ac[:, lo:hi + 1]
        # A periodic frame peaks at every multiple of its period; take the
        # first lag within 15% of the best one, then the top of that peak, so
        # a 220 Hz voice is not read as 110 or 73 Hz.
        near_best = seg >= 0.85 * seg.max(axis=1, keepdims=True)
        first = np.argmax(near_best, axis=1)
        reach = np.clip(first[:, None] + np.arange(_PEAK_REACH)[None, :], 0, seg.shape[1] - 1)
        best = reach[np.arange(len(seg)), np.argmax(np.take_along_axis(seg, reach, axis=1), axis=1)]
        voicing = np.clip(seg[np.arange(len(seg)), best], 0.0, 1.0)
        lag = (best + lo).astype(np.float64)
        # Parabolic interpolation around the peak for sub-sample lag.
        rows = np.arange(len(ac))
        left = ac[rows, np.clip(best + lo - 1, 0, None)]
        mid = ac[rows, best + lo]
        right = ac[rows, best + lo + 1]
        denom = left - 2 * mid + right
        shift = np.where(np.abs(denom) > _EPS, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
        lag = lag + np.clip(shift, -0.5, 0.5)
        return voicing.astype(np.float32), np.log2(self.spec.sr / lag).astype(np.float32)


def pool_window(frames: np.ndarray, frame_rate: float) -> np.ndarray:
    """Pool frame features (shape (F, len(_FRAME_COLS))) into one window vector."""
    stat = frames[:, [_COL[c] for c in _STAT_COLS]]
    parts = [np.stack([stat.mean(axis=0), stat.std(axis=0)], axis=1).ravel()]
    m0 = _COL["mfcc1"]
    dmfcc = np.diff(frames[:, m0:m0 + 12], axis=0) if len(frames) > 1 else np.zeros((1, 12))
    parts.append(dmfcc.std(axis=0))
    c0 = _COL["chroma0"]
    chroma = frames[:, c0:c0 + 12]
    parts.append([chroma.mean(), chroma.var(), chroma.std(axis=1).mean()])
    parts.append(_pitch_stats(frames[:, _COL["voicing"]], frames[:, _COL["log2_f0"]]))
    parts.append(_modulation(frames[:, _COL["rms_db"]], frame_rate))
    return np.concatenate([np.asarray(p, np.float32).ravel() for p in parts])


def _pitch_stats(voicing: np.ndarray, log2_f0: np.ndarray) -> list[float]:
    voiced = voicing >= VOICED_MIN
    f0 = log2_f0[voiced]
    if len(f0) < 3:
        # Unvoiced window: a neutral pitch (~150 Hz) and no movement, so the
        # voiced fraction alone tells the models that pitch is absent.
        return [float(voiced.mean()), float(voicing.mean()), 7.2, 7.2, 7.2, 0.0, 0.0]
    p10, med, p90 = np.percentile(f0, [10, 50, 90])
    jumps = np.abs(np.diff(log2_f0))[voiced[1:] & voiced[:-1]] * 12
    jump = float(np.median(jumps)) if len(jumps) else 0.0
    return [float(voiced.mean()), float(voicing.mean()), float(med), float(p10), float(p90),
            float(f0.std() * 12), jump]


def _modulation(rms_db: np.ndarray, frame_rate: float) -> list[float]:
    """Syllabic energy modulation: speech carries most of it at 2-8 Hz."""
    pause = float(np.mean(rms_db < rms_db.max() - 15.0))
    if len(rms_db) < 8:
        return [0.0, pause]
    env = rms_db - rms_db.mean()
    spec = np.abs(np.fft.rfft(env * np.hanning(len(env)))) ** 2
    freqs = np.fft.rfftfreq(len(env), 1.0 / frame_rate)
    total = spec[(freqs >= 0.5) & (freqs <= 20)].sum() + _EPS
    return [float(spec[(freqs >= 2) & (freqs <= 8)].sum() / total), pause]


@dataclass
class WindowFeatures:
    """Pooled features of consecutive windows.

    Attributes
    ----------
    index : np.ndarray of int, shape (m,)
        Window (cue) indices.
    X : np.ndarray, shape (m, len(feature_names()))
    level_db : np.ndarray, shape (m,)
        Mean power of each window in dBFS (for the silence floor).
    """

    index: np.ndarray
    X: np.ndarray
    level_db: np.ndarray

    @staticmethod
    def concat(parts: list["WindowFeatures"]) -> "WindowFeatures":
        if not parts:
            n = len(feature_names())
            return WindowFeatures(np.zeros(0, int), np.zeros((0, n), np.float32), np.zeros(0, np.float32))
        return WindowFeatures(np.concatenate([p.index for p in parts]),
                              np.vstack([p.X for p in parts]),
                              np.concatenate([p.level_db for p in parts]))


class StreamFeaturizer:
    """Turn a stream of sample blocks into pooled window features.

    Each frame of the global grid is computed exactly once; a window is
    pooled as soon as its last frame exists, and frames no window needs any
    more are dropped, so memory stays bounded by the window length.
    """

    def __init__(self, spec: FeatureSpec, grid: WindowGrid) -> None:
        if grid.sr != spec.sr:
            raise ParameterError(f"window grid at {grid.sr} Hz but features at {spec.sr} Hz")
        self.spec, self.grid = spec, grid
        self.analyze = FrameAnalyzer(spec)
        self._pad = spec.n_fft // 2
        self._buf = np.zeros(self._pad, np.float32)  # centred frames: zero padding in front
        self._buf_start = 0          # padded-coordinate index of _buf[0]
        self._next_frame = 0         # next frame index to compute
        self._frames = np.zeros((0, len(_FRAME_COLS)), np.float32)
        self._frame0 = 0             # global index of _frames[0]
        self._last_logmel: np.ndarray | None = None
        self._next_window = 0
        self.n_samples = 0

    def push(self, block: np.ndarray) -> WindowFeatures:
        """Add samples; return the windows that are now complete."""
        self.n_samples += len(block)
        self._buf = np.concatenate([self._buf, np.asarray(block, np.float32)])
        self._compute_frames(last=None)
        return self._emit(final=False)

    def finish(self) -> WindowFeatures:
        """End of stream: flush the trailing frames and windows."""
        self._buf = np.concatenate([self._buf, np.zeros(self._pad, np.float32)])
        self._compute_frames(last=self.n_samples // self.spec.hop)
        return self._emit(final=True)

    def _compute_frames(self, last: int | None) -> None:
        n, h = self.spec.n_fft, self.spec.hop
        avail_end = self._buf_start + len(self._buf)
        stop = (avail_end - n) // h + 1 if avail_end >= n else 0
        if last is not None:
            stop = min(stop, last + 1)
        if stop <= self._next_frame:
            return
        view = np.lib.stride_tricks.sliding_window_view(self._buf, n)
        new = []
        for k0 in range(self._next_frame, stop, _FRAME_BLOCK):
            k1 = min(stop, k0 + _FRAME_BLOCK)
            frames = view[k0 * h - self._buf_start:(k1 - 1) * h - self._buf_start + 1:h]
            feats, self._last_logmel = self.analyze(frames, self._last_logmel)
            new.append(feats)
        self._frames = np.vstack([self._frames, *new])
        self._next_frame = stop
        keep_from = stop * h - self._buf_start
        self._buf = self._buf[keep_from:].copy()
        self._buf_start = stop * h

    def _emit(self, final: bool) -> WindowFeatures:
        h = self.spec.hop
        frame_rate = self.spec.sr / h
        n_windows = self.grid.n_cues(self.n_samples) if final else None
        idx, rows, levels = [], [], []
        i = self._next_window
        while n_windows is None or i < n_windows:
            start, end = self.grid.span(i, self.n_samples if final else None)
            k_lo, k_hi = -(-start // h), -(-end // h)  # frames with centre in [start, end)
            if not final and k_hi > self._next_frame:
                break
            k_hi = max(min(k_hi, self._next_frame), k_lo + 1)
            frames = self._frames[k_lo - self._frame0:k_hi - self._frame0]
            rows.append(pool_window(frames, frame_rate))
            power = np.mean(10 ** (frames[:, _COL["rms_db"]] / 10))
            levels.append(10 * np.log10(power + _EPS))
            idx.append(i)
            i += 1
        self._next_window = i
        drop = -(-self.grid.span(i)[0] // h) - self._frame0
        if drop > 0:
            self._frames = self._frames[drop:]
            self._frame0 += drop
        if not idx:
            return WindowFeatures.concat([])
        return WindowFeatures(np.asarray(idx), np.vstack(rows), np.asarray(levels, np.float32))


def featurize(y: np.ndarray, *, spec: FeatureSpec, grid: WindowGrid) -> WindowFeatures:
    """Pooled features of every window of a whole signal (training's path).

    Runs exactly the streaming code the product uses, so training and
    prediction can never drift apart.
    """
    fz = StreamFeaturizer(spec, grid)
    return WindowFeatures.concat([fz.push(y), fz.finish()])
