"""Window features: one STFT per n_fft over the whole stream, pooled per window.

Frames are analysed once, in streaming order, on a global frame grid
(``FeatureSpec.hop``, n_fft / 4 unless a model's card says otherwise; centred
frames as in ``librosa.stft(center=True)``);
each window then pools the frames whose centres fall inside it. Every
frame-level quantity (log-mel, MFCC, spectral shape, chroma, pitch) is read
off that single spectrum, so features cost little beyond the FFT itself.

Pitch comes from the autocorrelation of each frame, computed as the inverse
FFT of the same (zero-padded) power spectrum: ``librosa.yin`` per window would
be ~5x slower than the whole rest of the analysis.

The mel and chroma filter banks are librosa's (``librosa.filters.mel`` with
Slaney scale and norm, ``librosa.filters.chroma`` with its defaults),
computed here with the same arithmetic in numpy: importing
``librosa.filters`` pulls in scipy.signal and numba and costs ~2 s at start-up.
``benchmarks/feature_parity.py`` checks both banks and every pooled feature
against an earlier revision of this file.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import KW_ONLY, dataclass

import numpy as np

from .errors import ParameterError
from .fft import irfft, rfft
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
_FRAME_BLOCK = 2048  # frames per analyzer call: bounds temporary memory
_BLOCK_BYTES = 2 ** 21  # zero-padded frames per FFT call (bytes): 512 frames at n_fft 512, 256 at 1024
_PAIRWISE_LEAF = 128  # numpy sums float arrays pairwise in halves down to runs of this many
_POOL_BATCH = 64  # windows pooled at once


@dataclass(frozen=True)
class FeatureSpec:
    """Analysis settings a model was trained with.

    Attributes
    ----------
    n_fft : int
        FFT size in samples (a power of two, 256-8192).
    sr : int
        Sample rate in Hz.
    hop : int
        Frame hop in samples (keyword; default ``n_fft // 4``, as the seed
        research used): a divisor of n_fft, so frames overlap a whole number
        of times. A longer hop computes fewer frames (n_fft / 2 halves them).
    """

    n_fft: int
    sr: int = 16000
    _: KW_ONLY
    hop: int | None = None

    def __post_init__(self) -> None:
        if self.n_fft < 256 or self.n_fft > 8192 or self.n_fft & (self.n_fft - 1):
            raise ParameterError(f"n_fft must be a power of two in 256-8192, got {self.n_fft}")
        if self.hop is None:
            object.__setattr__(self, "hop", self.n_fft // 4)  # frozen: set once, here
        hop = self.hop
        if isinstance(hop, bool) or not isinstance(hop, (int, np.integer)) or not 0 < hop <= self.n_fft \
                or self.n_fft % hop:
            raise ParameterError(f"hop must be a whole number of samples dividing n_fft {self.n_fft} "
                                 f"(e.g. {self.n_fft // 4} or {self.n_fft // 2}), got {hop!r}")
        object.__setattr__(self, "hop", int(hop))  # a plain int: cards and cache keys write it as JSON

    @property
    def overlap(self) -> int:
        """Frames covering each sample: n_fft / hop (4 at the default hop)."""
        return self.n_fft // self.hop


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
    names += SONG_FEATURES
    return names


# Sung against spoken voice, from the frames' voicing and F0 (no new analysis): singing holds notes
# on a pitch grid, in long voiced (legato) stretches, often with vibrato; speech glides and breaks
# into syllables about four times a second. Appended after the older columns, so a model may keep
# to those by name (see ``BASE_FEATURES``).
SONG_FEATURES = ["f0_held_frac", "f0_held_run_s", "voiced_run_s", "voiced_long_frac", "voicing_changes_hz",
                 "vibrato_ratio", "vibrato_depth_st", "tuning_strength"]
HELD_SLOPE_ST_S = 18.75  # F0 moving less than this (semitones/s: 0.3 semitone per 16 ms hop) is a held note
LONG_VOICED_S = 0.3      # voiced runs at least this long count as legato
VIBRATO_HZ = (4.0, 7.0)  # F0 modulation band of vibrato, against 1-15 Hz
TREND_S = 0.2            # F0 minus its moving average over this span: the vibrato's swing ...
VIBRATO_RANGE_ST = 1.5   # ... in spans whose F0 stays within this range (semitones)


_N_FEATURES = len(feature_names())
BASE_FEATURES = [n for n in feature_names() if n not in SONG_FEATURES]  # the columns before SONG_FEATURES


# --- filter banks: librosa's, without importing librosa -----------------------------------------

_F_SP = 200.0 / 3          # Slaney mel scale: linear below 1 kHz ...
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = (_MIN_LOG_HZ - 0.0) / _F_SP
_LOGSTEP = np.log(6.4) / 27.0  # ... logarithmic above


def _hz_to_mel(frequencies) -> np.ndarray:
    """``librosa.hz_to_mel(f, htk=False)``, same operations in the same order."""
    f = np.asanyarray(frequencies)
    mels = (f - 0.0) / _F_SP
    if f.ndim:
        log_t = f >= _MIN_LOG_HZ
        mels[log_t] = _MIN_LOG_MEL + np.log(f[log_t] / _MIN_LOG_HZ) / _LOGSTEP
    elif f >= _MIN_LOG_HZ:
        mels = _MIN_LOG_MEL + np.log(f / _MIN_LOG_HZ) / _LOGSTEP
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """``librosa.mel_to_hz(m, htk=False)`` for an array."""
    freqs = 0.0 + _F_SP * mels
    log_t = mels >= _MIN_LOG_MEL
    freqs[log_t] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_t] - _MIN_LOG_MEL))
    return freqs


def mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """``librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)`` (Slaney scale and norm), float32."""
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(float(sr) / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    return weights


def chroma_filters(sr: int, n_fft: int, n_chroma: int = 12) -> np.ndarray:
    """``librosa.filters.chroma(sr=sr, n_fft=n_fft)`` (A440 tuning, centred on octave 5,
    2 octaves wide, L2-normalised, starting at C), float32."""
    frequencies = np.linspace(0, sr, n_fft, endpoint=False)[1:]
    frqbins = n_chroma * np.log2(frequencies / (float(440.0 * 2.0 ** (0.0 / n_chroma)) / 16))
    frqbins = np.concatenate(([frqbins[0] - 1.5 * n_chroma], frqbins))
    binwidthbins = np.concatenate((np.maximum(frqbins[1:] - frqbins[:-1], 1.0), [1]))
    D = np.subtract.outer(frqbins, np.arange(0, n_chroma, dtype="d")).T
    n_chroma2 = np.round(float(n_chroma) / 2)
    D = np.remainder(D + n_chroma2 + 10 * n_chroma, n_chroma) - n_chroma2
    wts = np.exp(-0.5 * (2 * D / np.tile(binwidthbins, (n_chroma, 1))) ** 2)
    length = np.sum(np.abs(wts) ** 2, axis=0, keepdims=True) ** (1.0 / 2)  # librosa.util.normalize(norm=2)
    length[length < np.finfo(wts.dtype).tiny] = 1.0
    wts = wts / length
    wts *= np.tile(np.exp(-0.5 * (((frqbins / n_chroma - 5.0) / 2) ** 2)), (n_chroma, 1))
    wts = np.roll(wts, -3 * (n_chroma // 12), axis=0)
    return np.ascontiguousarray(wts[:, : int(1 + n_fft / 2)], dtype=np.float32)


# --- BLAS threads --------------------------------------------------------------------------------

class _SingleThreadedBlas:
    """While any featurizer is alive, OpenBLAS runs on one thread (process-wide).

    The frame maths are many small matrix products, for which OpenBLAS's
    thread hand-offs cost more than they give (5-10x slower on 2 cores, worse
    when two analyses run at once, one per core, as the pipeline does). The
    previous limits come back when the last featurizer finishes (or is
    dropped). threadpoolctl is a declared dependency (without it the analysis
    takes twice the CPU); should it be unable to drive the BLAS, this does
    nothing.

    The limit is set and lifted where featurizers are made and finished (the
    pipeline's main thread), not where they compute: once the main thread has
    set OpenBLAS's thread count, a change made from another thread no
    longer takes effect (OpenBLAS 0.3.30-0.3.31, as in numpy 2.4's and scipy
    1.17's wheels).
    """

    _lock = threading.Lock()
    _users = 0
    _limiter = None
    _controller = None

    @classmethod
    def acquire(cls) -> None:
        with cls._lock:
            if cls._users == 0:
                try:
                    if cls._controller is None:
                        from threadpoolctl import ThreadpoolController

                        cls._controller = ThreadpoolController()
                    cls._limiter = cls._controller.limit(limits=1, user_api="blas")
                except Exception:  # no threadpoolctl, or a BLAS it cannot drive: leave it be
                    cls._limiter = None
            cls._users += 1

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._users -= 1
            if cls._users == 0 and cls._limiter is not None:
                cls._limiter.restore_original_limits()
                cls._limiter = None


# --- frame features ------------------------------------------------------------------------------

def _band_slices(freqs: np.ndarray, edges: tuple[int, ...]) -> list[slice]:
    """Bins ``lo <= f < hi`` of each band (the last band includes its top edge), as slices."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (freqs >= lo) & (freqs < hi if hi < edges[-1] else freqs <= hi)
        idx = np.flatnonzero(mask)
        out.append(slice(int(idx[0]), int(idx[-1]) + 1))
    return out


def _hop_span(frames: np.ndarray, hop: int) -> np.ndarray | None:
    """The samples under a block of consecutive frames, as one array, if ``frames`` views them.

    ``frames`` made by ``sliding_window_view(signal, n)[::hop]`` step through the
    signal's own memory, ``hop`` samples per frame; then the ``(F - 1) * hop + n``
    samples they cover are one contiguous run, returned as a read-only view.
    Any other array of frames (a copy, another stride): None.
    """
    size = frames.itemsize
    if frames.ndim != 2 or frames.strides != (hop * size, size) or len(frames) == 0:
        return None
    length = (len(frames) - 1) * hop + frames.shape[1]
    return np.lib.stride_tricks.as_strided(frames, shape=(length,), strides=(size,), writeable=False)


def _pairwise_windows(values: np.ndarray, k: int) -> np.ndarray:
    """Sums of every ``k`` consecutive values (``k`` a power of two), added as numpy's pairwise sum adds them.

    ``((v0 + v1) + (v2 + v3))`` for k = 4, ``v0 + v1`` for k = 2: the order
    ``np.sum`` takes over a row of k chunks of >= 128 values, so the float
    result is bit for bit the whole row's sum. Returns ``len(values) - k + 1`` sums.
    """
    sums, width = values, 1
    while width < k:
        sums = sums[:-width] + sums[width:]  # sums of 2 * width values: two halves of width each
        width *= 2
    return sums


class FrameAnalyzer:
    """Per-frame features from the frames' spectra (filters and buffers built once).

    The FFTs and per-frame features run ``block`` frames at a time (2 MB of
    zero-padded frames; 1 to 8 MB measured, 2-4 MB at least as fast as the
    others) in work buffers reused from block to block, not in fresh 8-16 MB
    temporaries per call (~100 MB per analyzer at peak, faulted in anew on
    short inputs). Every operation is the one the models were trained with, in
    the same order and precision, so the features are bit for bit those of a
    plain whole-call computation (``benchmarks/feature_parity.py``,
    ``benchmarks/feature_speed.py``).

    Not reentrant: one analyzer per thread (each :class:`StreamFeaturizer` has its own).
    """

    def __init__(self, spec: FeatureSpec) -> None:
        n, sr = spec.n_fft, spec.sr
        self.spec = spec
        self.window = np.hanning(n + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa
        self.freqs = np.fft.rfftfreq(n, 1.0 / sr)
        self._freq_moments = np.stack([self.freqs, self.freqs ** 2], axis=1)  # for centroid and spread
        self.mel = mel_filters(sr, n, N_MELS)
        self.chroma = chroma_filters(sr, n)
        # Orthonormal DCT-II matrix (scipy.fft.dct(np.eye(N_MELS), type=2, norm="ortho", axis=0)).
        k, m = np.arange(N_MELS)[:, None], np.arange(N_MELS)[None, :]
        dct = np.sqrt(2.0 / N_MELS) * np.cos(np.pi * k * (2 * m + 1) / (2 * N_MELS))
        dct[0] /= np.sqrt(2.0)
        self.dct = dct[:N_MFCC].astype(np.float32)
        # Autocorrelation of the window itself, to undo its taper on long lags.
        wac = np.fft.irfft(np.abs(np.fft.rfft(self.window, 2 * n)) ** 2)[:n]
        self.lag_min = int(sr / F0_MAX_HZ)
        self.lag_max = min(int(sr / F0_MIN_HZ), int(0.6 * n))
        self.wac = (wac / wac[0])[: self.lag_max + 2].astype(np.float32)
        self.seed_bands = _band_slices(self.freqs, SEED_BANDS_HZ)
        self.contrast_bands = _band_slices(self.freqs, CONTRAST_BANDS_HZ)
        self.block = max(64, _BLOCK_BYTES // (8 * n))  # frames per FFT call
        bins = n // 2 + 1
        self._padded = np.zeros((self.block, 2 * n), np.float32)  # windowed frames, zero second half
        # The 2n-point power spectrum goes into the real part of a complex array
        # whose imaginary part stays zero, so the inverse FFT for pitch takes
        # it as it is (scipy's irfft does not write to its input).
        self._power2c = np.zeros((self.block, n + 1), np.complex64)
        self._power = np.empty((0, bins), np.float32)  # every frame of a call: grown on demand
        self._mag = np.empty((self.block, bins), np.float32)
        self._log_power = np.empty((self.block, bins), np.float32)  # also the roll-off's running sums
        self._lags = np.empty((self.block, self.lag_max + 2), np.float32)
        self._near_best = np.empty((self.block, self.lag_max + 1 - self.lag_min), bool)
        self._reach = np.arange(_PEAK_REACH)[None, :]
        self._rows = np.arange(self.block)

    def _padded_frames(self, frames: np.ndarray) -> np.ndarray:
        """The frames (at most ``block``) times the window, zero-padded to 2 n_fft, in a reused buffer."""
        buf = self._padded[: len(frames)]
        np.multiply(frames, self.window, out=buf[:, : self.spec.n_fft])
        return buf

    def __call__(self, frames: np.ndarray, prev_logmel: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Features of a block of consecutive frames.

        Parameters
        ----------
        frames : np.ndarray, shape (F, n_fft)
            Raw (unwindowed) frames, ``hop`` samples apart; a view made by
            ``sliding_window_view`` is analysed faster (see :meth:`_level_and_crossings`).
        prev_logmel : np.ndarray or None
            Log-mel of the frame just before this block, for spectral flux.

        Returns
        -------
        feats : np.ndarray, shape (F, len(_FRAME_COLS))
        last_logmel : np.ndarray, shape (N_MELS,)
        """
        out = np.empty((len(frames), len(_FRAME_COLS)), np.float32)
        if len(self._power) < len(frames):
            self._power = np.empty((max(len(frames), _FRAME_BLOCK), self._power.shape[1]), np.float32)
        power = self._power[: len(frames)]
        self._level_and_crossings(frames, out)
        for k0 in range(0, len(frames), self.block):
            k1 = min(k0 + self.block, len(frames))
            self._spectral(frames[k0:k1], power[k0:k1], out[k0:k1])
        return out, self._filter_banks(power, prev_logmel, out)

    def _level_and_crossings(self, frames: np.ndarray, out: np.ndarray) -> None:
        """RMS level (dB) and zero-crossing rate of every frame, into ``out``.

        Frames overlap ``k = n_fft / hop`` times (4 at the default hop), so
        when they view one signal each sample is squared and sign-tested once,
        per hop-long chunk, and a frame adds up its k chunks. The sum is the
        very one ``np.mean(frames ** 2, axis=1)`` makes: numpy sums pairwise in
        halves down to 128 values, so a frame of k chunks of >= 128 samples
        (n_fft and hop powers of two) splits at the chunk edges, and the chunk
        sums are added in the same tree (see :func:`_pairwise_windows`).
        Crossings are integer counts, exact in any order. A hop under 128
        samples (n_fft 256 at its default hop) takes the plain formulas.
        """
        n, h = self.spec.n_fft, self.spec.hop
        span = _hop_span(frames, h) if h >= _PAIRWISE_LEAF else None
        if span is None:
            out[:, _COL["rms_db"]] = 10 * np.log10(np.mean(frames ** 2, axis=1) + _EPS)
            signs = np.signbit(frames)
            crossings = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1)
        else:
            k = self.spec.overlap
            chunks = span.reshape(-1, h)  # (F + k - 1, hop)
            total = _pairwise_windows(np.square(chunks).sum(axis=1), k)
            out[:, _COL["rms_db"]] = 10 * np.log10(total / n + _EPS)
            signs = np.signbit(span)
            flips = np.zeros(len(span), bool)  # flips[t]: samples t and t + 1 differ in sign
            np.not_equal(signs[1:], signs[:-1], out=flips[:-1])
            flips = flips.reshape(-1, h)
            per_chunk = np.count_nonzero(flips, axis=1)
            # A frame's n - 1 sample pairs: its k chunks' pairs, less the one
            # that reaches past its last sample.
            crossings = _pairwise_windows(per_chunk, k) - flips[k - 1:, -1]
        out[:, _COL["zcr"]] = crossings / (n - 1)

    def _spectral(self, frames: np.ndarray, power: np.ndarray, out: np.ndarray) -> None:
        """Power spectrum (into ``power``), spectral shape and pitch of at most ``block`` frames (into ``out``)."""
        sr, b = self.spec.sr, len(frames)
        # Zero-padded to 2n: its even bins are the n-point spectrum, and its
        # power gives the linear (not circular) autocorrelation for pitch.
        spec2 = rfft(self._padded_frames(frames), axis=1)
        parts = spec2.view(np.float32)
        np.multiply(parts, parts, out=parts)  # re^2, im^2 side by side: contiguous, so fast
        power2 = self._power2c[:b].real
        np.add(parts[:, 0::2], parts[:, 1::2], out=power2)
        del spec2, parts
        np.copyto(power, power2[:, ::2])
        mag = np.sqrt(power, out=self._mag[:b])

        nyq = sr / 2
        mag_sum = mag.sum(axis=1) + _EPS
        moments = mag @ self._freq_moments  # sum(mag f), sum(mag f^2), in float64
        centroid = moments[:, 0] / mag_sum
        out[:, _COL["centroid"]] = centroid / nyq
        # sum(mag (f - c)^2) / sum(mag), expanded; rounding can leave a hair below 0.
        spread = (moments[:, 1] - 2 * centroid * moments[:, 0] + centroid ** 2 * (mag_sum - _EPS)) / mag_sum
        out[:, _COL["bandwidth"]] = np.sqrt(np.maximum(spread, 0.0)) / nyq
        # One cumsum call, not a vector add per bin across frames (2x faster on one
        # thread, but 256-512 tiny calls per block, each releasing and retaking
        # the GIL, which the pipeline's analysis threads share).
        cum = np.cumsum(power, axis=1, out=self._log_power[:b])
        out[:, _COL["rolloff"]] = np.argmax(cum >= 0.85 * cum[:, -1:], axis=1) / power.shape[1]
        log_power = np.add(power, _EPS, out=self._log_power[:b])
        np.log(log_power, out=log_power)
        out[:, _COL["flatness"]] = (log_power.mean(axis=1) - np.log(power.mean(axis=1) + _EPS)) / np.log(10)

        for i, band in enumerate(self.seed_bands):
            out[:, _COL[f"band{i}"]] = np.log(mag[:, band].mean(axis=1) + _EPS)
        for i, band in enumerate(self.contrast_bands):
            values = log_power[:, band]
            k = max(1, values.shape[1] // 5)  # peaks vs valleys: top and bottom fifth
            if k == 1:  # the top and bottom fifth are single values: no sort needed
                out[:, _COL[f"contrast{i}"]] = values.max(axis=1) - values.min(axis=1)
            else:
                ranked = np.sort(values, axis=1)
                # Sums over k, as mean(axis=1) divides them, without its per-call overhead.
                out[:, _COL[f"contrast{i}"]] = ranked[:, -k:].sum(axis=1) / k - ranked[:, :k].sum(axis=1) / k

        voicing, log2_f0 = self._pitch(self._power2c[:b])
        out[:, _COL["voicing"]] = voicing
        out[:, _COL["log2_f0"]] = log2_f0

    def _filter_banks(self, power: np.ndarray, prev_logmel: np.ndarray | None, out: np.ndarray) -> np.ndarray:
        """MFCC, spectral flux and chroma of every frame of a call (into ``out``); returns the last log-mel.

        One matrix product over the whole call, not one per ``block``: OpenBLAS
        rounds a row differently depending on how many rows it is given, and
        the models were trained on the products of whole calls.
        """
        logmel = power @ self.mel.T
        np.log(np.add(logmel, _EPS, out=logmel), out=logmel)
        i0 = _COL["mfcc0"]
        out[:, i0:i0 + N_MFCC] = logmel @ self.dct.T
        diff = np.empty_like(logmel)
        np.subtract(logmel[0], logmel[0] if prev_logmel is None else prev_logmel, out=diff[0])
        np.subtract(logmel[1:], logmel[:-1], out=diff[1:])
        out[:, _COL["flux"]] = np.maximum(diff, 0, out=diff).mean(axis=1)

        chroma = power @ self.chroma.T
        c0 = _COL["chroma0"]
        out[:, c0:c0 + 12] = chroma / (chroma.max(axis=1, keepdims=True) + _EPS)
        return logmel[-1]

    def _pitch(self, power2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Voicing strength (0-1) and log2 F0 from the autocorrelation.

        ``power2c``: the 2n-point power spectrum as a complex array (imaginary part zero).
        """
        ac = irfft(power2c, 2 * self.spec.n_fft, axis=1)[:, : self.lag_max + 2]
        b = len(ac)
        ac = np.divide(ac, ac[:, :1] + _EPS, out=self._lags[:b])
        ac /= self.wac[None, :]
        lo, hi = self.lag_min, self.lag_max
        seg = ac[:, lo:hi + 1]
        # A periodic frame peaks at every multiple of its period; take the
        # first lag within 15% of the best one, then the top of that peak, so
        # a 220 Hz voice is not read as 110 or 73 Hz.
        near_best = np.greater_equal(seg, 0.85 * seg.max(axis=1, keepdims=True), out=self._near_best[:b])
        first = np.argmax(near_best, axis=1)
        reach = np.minimum(first[:, None] + self._reach, seg.shape[1] - 1)
        rows = self._rows[:b]
        best = reach[rows, np.argmax(seg[rows[:, None], reach], axis=1)]
        voicing = np.clip(seg[rows, best], 0.0, 1.0)
        lag = (best + lo).astype(np.float64)
        # Parabolic interpolation around the peak for sub-sample lag.
        left = ac[rows, np.clip(best + lo - 1, 0, None)]
        mid = ac[rows, best + lo]
        right = ac[rows, best + lo + 1]
        denom = left - 2 * mid + right
        shift = np.where(np.abs(denom) > _EPS, 0.5 * (left - right) / np.where(denom == 0, 1, denom), 0.0)
        lag = lag + np.clip(shift, -0.5, 0.5)
        return voicing.astype(np.float32), np.log2(self.spec.sr / lag).astype(np.float32)


# --- pooling -------------------------------------------------------------------------------------

_STAT_IDX = np.array([_COL[c] for c in _STAT_COLS])
_PERCENTILES = np.array([10.0, 50.0, 90.0])


def pool_window(frames: np.ndarray, frame_rate: float) -> np.ndarray:
    """Pool frame features (shape (F, len(_FRAME_COLS))) into one window vector."""
    return pool_windows(frames[None], frame_rate)[0]


def pool_windows(frames: np.ndarray, frame_rate: float, *, song: bool = True) -> np.ndarray:
    """Pool windows of equal length at once: (W, F, len(_FRAME_COLS)) -> (W, n_features).

    ``song``: compute the ``SONG_FEATURES`` columns; False leaves them 0 (for
    streams whose models take none of them: ~5% of a stream's CPU).
    """
    n_win, n_frames = frames.shape[:2]
    stat = frames[:, :, _STAT_IDX]
    parts = [np.stack([stat.mean(axis=1), stat.std(axis=1)], axis=2).reshape(n_win, -1)]
    m0 = _COL["mfcc1"]
    if n_frames > 1:
        parts.append(np.diff(frames[:, :, m0:m0 + 12], axis=1).std(axis=1))
    else:
        parts.append(np.zeros((n_win, 12), np.float32))
    c0 = _COL["chroma0"]
    chroma = frames[:, :, c0:c0 + 12]
    parts.append(np.stack([chroma.mean(axis=(1, 2)), chroma.var(axis=(1, 2)),
                           chroma.std(axis=2).mean(axis=1)], axis=1))
    parts.append(_pitch_stats(frames[:, :, _COL["voicing"]], frames[:, :, _COL["log2_f0"]]))
    parts.append(_modulation(frames[:, :, _COL["rms_db"]], frame_rate))
    if song:
        parts.append(_song_stats(frames[:, :, _COL["voicing"]], frames[:, :, _COL["log2_f0"]], frame_rate))
    else:
        parts.append(np.zeros((n_win, len(SONG_FEATURES)), np.float32))
    return np.concatenate([np.asarray(p, np.float32) for p in parts], axis=1)


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's own interpolation between order statistics (``np.percentile``, method linear)."""
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _masked_percentiles(values: np.ndarray, mask: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.percentile(row[mask_row], q)`` for every row with at least one value: (rows, len(q))."""
    ranked = np.sort(np.where(mask, values, np.inf), axis=1)
    count = mask.sum(axis=1)
    virtual = (np.maximum(count, 1) - 1)[:, None] * (q / 100.0)[None, :]
    lo = np.floor(virtual).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(count, 1)[:, None] - 1)
    a = np.take_along_axis(ranked, lo, axis=1).astype(np.float64)
    b = np.take_along_axis(ranked, hi, axis=1).astype(np.float64)
    return _lerp(a, b, virtual - lo)


def _pitch_stats(voicing: np.ndarray, log2_f0: np.ndarray) -> np.ndarray:
    """Per window (rows): voiced share, mean voicing, F0 median / p10 / p90, spread and jumps."""
    voiced = voicing >= VOICED_MIN
    count = voiced.sum(axis=1)
    out = np.empty((len(voicing), 7), np.float64)
    out[:, 0] = voiced.mean(axis=1)
    out[:, 1] = voicing.mean(axis=1)
    # Unvoiced window (< 3 voiced frames): a neutral pitch (~150 Hz) and no
    # movement, so the voiced fraction alone tells the models that pitch is absent.
    out[:, 2:5] = 7.2
    out[:, 5:7] = 0.0
    rows = count >= 3
    if rows.any():
        f0, v = log2_f0[rows].astype(np.float64), voiced[rows]
        p10, med, p90 = _masked_percentiles(f0, v, _PERCENTILES).T
        out[rows, 2], out[rows, 3], out[rows, 4] = med, p10, p90
        k = count[rows]
        mean = np.where(v, f0, 0.0).sum(axis=1) / k
        out[rows, 5] = np.sqrt(np.where(v, (f0 - mean[:, None]) ** 2, 0.0).sum(axis=1) / k) * 12
        both = v[:, 1:] & v[:, :-1]
        jumps = np.abs(np.diff(f0, axis=1)) * 12
        has = both.any(axis=1)
        jump = np.zeros(len(f0))
        if has.any():
            jump[has] = _masked_percentiles(jumps[has], both[has], np.array([50.0]))[:, 0]
        out[rows, 6] = jump
    return out


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of True in each row of a bool array: (row of each run, its length in elements)."""
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]  # row-major order: the n-th end closes the n-th start
    return rows, ends - starts


def _song_stats(voicing: np.ndarray, log2_f0: np.ndarray, frame_rate: float) -> np.ndarray:
    """Per window (rows): held-note share and longest held note, longest voiced run, share of voiced
    frames in long runs, voiced/unvoiced changes per second, vibrato band share and depth, and how
    closely F0 keeps to one tuning grid (see ``SONG_FEATURES``)."""
    n_win, n = voicing.shape
    out = np.zeros((n_win, len(SONG_FEATURES)), np.float64)
    if n < 2:
        return out
    voiced = voicing >= VOICED_MIN
    semis = log2_f0.astype(np.float64) * 12
    step = np.abs(np.diff(semis, axis=1))
    pairs = voiced[:, 1:] & voiced[:, :-1]
    held = pairs & (step < HELD_SLOPE_ST_S / frame_rate)
    n_pairs = pairs.sum(axis=1)
    out[:, 0] = held.sum(axis=1) / np.maximum(n_pairs, 1)
    rows, length = _runs(held)  # a run of k held pairs spans k + 1 frames
    np.maximum.at(out[:, 1], rows, (length + 1) / frame_rate)
    rows, length = _runs(voiced)
    np.maximum.at(out[:, 2], rows, length / frame_rate)
    np.add.at(out[:, 3], rows, np.where(length >= LONG_VOICED_S * frame_rate, length, 0))
    out[:, 3] /= np.maximum(voiced.sum(axis=1), 1)
    out[:, 4] = np.abs(np.diff(voiced.astype(np.int8), axis=1)).sum(axis=1) * frame_rate / n

    # Vibrato: F0 minus its centred moving average, where the whole span is voiced and on one note.
    span = max(3, int(round(TREND_S * frame_rate)) | 1)
    if n >= span + 8:
        f0 = np.where(voiced, semis, 0.0)
        csum = np.cumsum(np.pad(f0, ((0, 0), (1, 0))), axis=1)
        trend = (csum[:, span:] - csum[:, :-span]) / span  # (W, n - span + 1): span starting at each frame
        cvoiced = np.cumsum(np.pad(voiced.astype(np.int32), ((0, 0), (1, 0))), axis=1)
        full = (cvoiced[:, span:] - cvoiced[:, :-span]) == span
        # A span covering more than 1.5 semitones (a change of note, an octave error) is no vibrato.
        spans = np.lib.stride_tricks.sliding_window_view(semis, span, axis=1)
        full &= spans.max(axis=2) - spans.min(axis=2) <= VIBRATO_RANGE_ST
        half = span // 2
        dev = np.where(full, semis[:, half:half + trend.shape[1]] - trend, 0.0)
        m = dev.shape[1]
        spec = np.abs(np.fft.rfft(dev * np.hanning(m), axis=1)) ** 2
        freqs = np.fft.rfftfreq(m, 1.0 / frame_rate)
        total = spec[:, (freqs >= 1) & (freqs <= 15)].sum(axis=1)
        band = spec[:, (freqs >= VIBRATO_HZ[0]) & (freqs <= VIBRATO_HZ[1])].sum(axis=1)
        k = full.sum(axis=1)
        ok = k >= 8
        out[ok, 5] = band[ok] / (total[ok] + _EPS)
        out[ok, 6] = np.sqrt((dev[ok] ** 2).sum(axis=1) / k[ok])

    # Tuning: the fraction of a semitone of every voiced F0, as a phase; notes on one grid agree.
    count = voiced.sum(axis=1)
    phase = np.exp(2j * np.pi * semis)
    resultant = np.abs(np.where(voiced, phase, 0).sum(axis=1)) / np.maximum(count, 1)
    out[:, 7] = np.where(count >= 3, resultant, 0.0)
    return out


def _modulation(rms_db: np.ndarray, frame_rate: float) -> np.ndarray:
    """Syllabic energy modulation (rows = windows): speech carries most of it at 2-8 Hz."""
    pause = np.mean(rms_db < rms_db.max(axis=1, keepdims=True) - 15.0, axis=1)
    n = rms_db.shape[1]
    if n < 8:
        return np.stack([np.zeros(len(rms_db)), pause], axis=1)
    env = rms_db - rms_db.mean(axis=1, keepdims=True)
    spec = np.abs(np.fft.rfft(env * np.hanning(n), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / frame_rate)
    total = spec[:, (freqs >= 0.5) & (freqs <= 20)].sum(axis=1) + _EPS
    return np.stack([spec[:, (freqs >= 2) & (freqs <= 8)].sum(axis=1) / total, pause], axis=1)


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
            return WindowFeatures(np.zeros(0, int), np.zeros((0, _N_FEATURES), np.float32), np.zeros(0, np.float32))
        return WindowFeatures(np.concatenate([p.index for p in parts]),
                              np.vstack([p.X for p in parts]),
                              np.concatenate([p.level_db for p in parts]))


class StreamFeaturizer:
    """Turn a stream of sample blocks into pooled window features.

    Each frame of the global grid is computed exactly once; a window is
    pooled as soon as its last frame exists, and frames no window needs any
    more are dropped, so memory stays bounded by the window length.

    From its creation until :meth:`finish` (or until it is dropped) OpenBLAS
    runs single-threaded (see :class:`_SingleThreadedBlas`): make and finish
    featurizers in the thread that drives them; :meth:`push` may run in any.

    ``song=False`` leaves the ``SONG_FEATURES`` columns 0 (see :func:`pool_windows`).
    """

    def __init__(self, spec: FeatureSpec, grid: WindowGrid, *, song: bool = True) -> None:
        if grid.sr != spec.sr:
            raise ParameterError(f"window grid at {grid.sr} Hz but features at {spec.sr} Hz")
        self.spec, self.grid, self.song = spec, grid, song
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
        _SingleThreadedBlas.acquire()
        self._blas_limit = weakref.finalize(self, _SingleThreadedBlas.release)

    def push(self, block: np.ndarray) -> WindowFeatures:
        """Add samples; return the windows that are now complete."""
        self.n_samples += len(block)
        self._buf = np.concatenate([self._buf, np.asarray(block, np.float32)])
        self._compute_frames(last=None)
        return self._emit(final=False)

    def finish(self) -> WindowFeatures:
        """End of stream: flush the trailing frames and windows."""
        self._buf = np.concatenate([self._buf, np.zeros(self._pad, np.float32)])
        try:
            self._compute_frames(last=self.n_samples // self.spec.hop)
            return self._emit(final=True)
        finally:
            self._blas_limit()  # once only: later calls do nothing

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
        n_windows = self.grid.n_cues(self.n_samples) if final else None
        spans = []  # (window index, first frame, end frame), frames relative to _frames[0]
        i = self._next_window
        while n_windows is None or i < n_windows:
            start, end = self.grid.span(i, self.n_samples if final else None)
            k_lo, k_hi = -(-start // h), -(-end // h)  # frames with centre in [start, end)
            if not final and k_hi > self._next_frame:
                break
            # The last window can hold no frame centre at all (a window as long as
            # the hop, a file a few samples past a cue boundary): it gets the last frame.
            k_lo = min(k_lo, self._next_frame - 1)
            k_hi = max(min(k_hi, self._next_frame), k_lo + 1)
            spans.append((i, k_lo - self._frame0, k_hi - self._frame0))
            i += 1
        self._next_window = i
        pooled = self._pool(spans)
        # Frames no later window needs are dropped; the last one is always kept.
        drop = min(-(-self.grid.span(i)[0] // h), self._next_frame - 1) - self._frame0
        if drop > 0:
            self._frames = self._frames[drop:]
            self._frame0 += drop
        return pooled

    def _pool(self, spans: list[tuple[int, int, int]]) -> WindowFeatures:
        """Pool the windows, batching those of equal length (all but the ends)."""
        if not spans:
            return WindowFeatures.concat([])
        frame_rate = self.spec.sr / self.spec.hop
        X = np.empty((len(spans), _N_FEATURES), np.float32)
        levels = np.empty(len(spans), np.float32)
        first = np.array([s[1] for s in spans])
        length = np.array([s[2] - s[1] for s in spans])
        for n_frames in np.unique(length):
            same = np.flatnonzero(length == n_frames)
            for rows in np.array_split(same, -(-len(same) // _POOL_BATCH)):
                batch = self._frames[first[rows, None] + np.arange(n_frames)[None, :]]  # (w, F, cols)
                X[rows] = pool_windows(batch, frame_rate, song=self.song)
                power = np.mean(10 ** (batch[:, :, _COL["rms_db"]] / 10), axis=1)
                levels[rows] = 10 * np.log10(power + _EPS)
        return WindowFeatures(np.array([s[0] for s in spans]), X, levels)


def featurize(y: np.ndarray, *, spec: FeatureSpec, grid: WindowGrid) -> WindowFeatures:
    """Pooled features of every window of a whole signal (training's path).

    Runs exactly the streaming code the product uses, so training and
    prediction can never drift apart.
    """
    fz = StreamFeaturizer(spec, grid)
    return WindowFeatures.concat([fz.push(y), fz.finish()])
