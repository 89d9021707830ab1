"""Speaker embeddings in numpy: a port of Resemblyzer's ``VoiceEncoder``.

The network is Resemblyzer's (Apache-2.0, weights from the ``resemblyzer``
wheel's ``pretrained.pt``, exported by ``dramapic-subs-train export-encoder``
to ``models/speaker_encoder.npz``): a 3-layer LSTM (40 -> 256) over 160
frames (1.6 s) of a 40-band mel power spectrogram (25 ms window, 10 ms hop
at 16 kHz), whose last hidden state goes through a 256 -> 256 linear layer,
a ReLU and L2 normalisation. Embeddings of one voice point the same way
whatever is said, so they carry the voice (timbre, formants, pitch) rather
than pitch alone.

Torch is not needed at run time: the LSTM runs in float32 numpy, one layer
at a time over a batch of partials, so each of its 160 steps is one
(batch, 256) x (256, 1024) product rather than a Python loop per partial.
The mel bank is librosa's (``features.mel_filters``, rebuilt in numpy: no
librosa import at run time).

Departures from ``VoiceEncoder.embed_utterance``: no webrtcvad trimming of
silences (the caller drops silent windows), and volume normalisation
(raise to -30 dBFS, never lower, as Resemblyzer's ``preprocess_wav``) is
applied per span, not per file.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checksums import sha256_file
from .errors import ModelError, ParameterError
from .features import mel_filters
from .fft import rfft
from .windows import WindowRows

SR = 16000
N_MELS = 40
N_FFT = 400            # 25 ms at 16 kHz
HOP = 160              # 10 ms at 16 kHz
PARTIAL_FRAMES = 160   # 1.6 s of frames per partial utterance
HIDDEN = 256
EMBED_DIM = 256
N_LAYERS = 3
TARGET_DBFS = -30.0    # Resemblyzer's audio_norm_target_dBFS
_BATCH = 128           # partials per LSTM pass: bounds the (160, batch, 1024) input-gate buffer to 84 MB
# Windows the gated stream gathers before it runs the encoder (its samples kept meanwhile: ~1 MB per
# 16 windows). The LSTM's steps cost per batch, not per window: one thread, ~30 ms per window alone,
# 13 at 16, 9.5 at 64 (benchmarks/RESULTS.md, session 10).
GATED_BATCH = 24
ENCODER_NAME = "speaker_encoder"


@dataclass(frozen=True)
class _Layer:
    """One LSTM layer, gates reordered to (input, forget, output, cell) and pre-scaled.

    PyTorch stores (input, forget, cell, output). With the three sigmoid
    gates side by side and their rows halved, one tanh over all four gates
    gives both activations: ``sigmoid(x) = (tanh(x / 2) + 1) / 2``.
    """

    w_ih_t: np.ndarray  # (n_in, 4 * HIDDEN)
    w_hh_t: np.ndarray  # (HIDDEN, 4 * HIDDEN)
    bias: np.ndarray    # (4 * HIDDEN,): b_ih + b_hh

    @staticmethod
    def from_torch(w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray) -> "_Layer":
        """From PyTorch's ``weight_ih``, ``weight_hh`` (4 * HIDDEN rows) and summed biases."""
        scale = np.ones(4 * HIDDEN, np.float32)
        scale[:3 * HIDDEN] = 0.5  # sigmoid gates: the network computes x / 2 for tanh directly
        return _Layer(w_ih_t=np.ascontiguousarray((_to_ifoc(w_ih) * scale[:, None]).T, np.float32),
                      w_hh_t=np.ascontiguousarray((_to_ifoc(w_hh) * scale[:, None]).T, np.float32),
                      bias=(_to_ifoc(bias) * scale).astype(np.float32))


def _to_ifoc(w: np.ndarray) -> np.ndarray:
    """Reorder PyTorch's gate blocks (i, f, g, o) along axis 0 to (i, f, o, g)."""
    i, f, g, o = np.split(w, 4, axis=0)
    return np.concatenate([i, f, o, g], axis=0)


class SpeakerEncoder:
    """Resemblyzer's voice encoder in numpy float32.

    Build it with :func:`load_encoder`.
    """

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        layers = []
        for k in range(N_LAYERS):
            try:
                w_ih, w_hh = weights[f"lstm.weight_ih_l{k}"], weights[f"lstm.weight_hh_l{k}"]
                bias = weights[f"lstm.bias_ih_l{k}"].astype(np.float32) + weights[f"lstm.bias_hh_l{k}"]
            except KeyError as exc:
                raise ModelError(f"speaker encoder weights lack {exc.args[0]}") from None
            n_in = N_MELS if k == 0 else HIDDEN
            if w_ih.shape != (4 * HIDDEN, n_in) or w_hh.shape != (4 * HIDDEN, HIDDEN):
                raise ModelError(f"speaker encoder layer {k}: unexpected shapes {w_ih.shape}, {w_hh.shape}")
            layers.append(_Layer.from_torch(w_ih.astype(np.float32), w_hh.astype(np.float32), bias))
        self.layers = layers
        self.linear_t = np.ascontiguousarray(weights["linear.weight"].T, np.float32)  # (HIDDEN, EMBED_DIM)
        self.linear_b = weights["linear.bias"].astype(np.float32)
        self.mel = mel_filters(SR, N_FFT, N_MELS)           # (40, 201), librosa's Slaney bank
        self.window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa

    # --- front end ---------------------------------------------------------------------------

    def mel_frames(self, y: np.ndarray) -> np.ndarray:
        """Mel power spectrogram as Resemblyzer's ``wav_to_mel_spectrogram`` (not log).

        Parameters
        ----------
        y : np.ndarray, shape (n,)
            Mono float samples at 16 kHz.

        Returns
        -------
        np.ndarray, shape (1 + n // 160, 40), float32
            One row per 10 ms frame; frames are centred (zero padding of
            200 samples, 12.5 ms, at each end, as ``librosa.stft(center=True)``).
        """
        y = np.asarray(y, np.float32)
        padded = np.pad(y, N_FFT // 2)
        frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
        # scipy's FFT stays in float32 (numpy's works in float64 before 2.0) and is ~1.7x faster here.
        spec = rfft(frames * self.window, axis=1)
        power = spec.real ** 2
        power += spec.imag ** 2
        return power @ self.mel.T

    # --- network -----------------------------------------------------------------------------

    def embed_mels(self, mels: np.ndarray) -> np.ndarray:
        """Embeddings of partials, as ``VoiceEncoder.forward``.

        Parameters
        ----------
        mels : np.ndarray, shape (batch, frames, 40)
            Mel power spectrograms (160 frames each for Resemblyzer's partials).

        Returns
        -------
        np.ndarray, shape (batch, 256), float32
            Non-negative, L2-normalised embeddings.
        """
        mels = np.asarray(mels, np.float32)
        if mels.ndim != 3 or mels.shape[2] != N_MELS:
            raise ParameterError(f"mels must have shape (batch, frames, {N_MELS}), got {mels.shape}")
        out = np.empty((len(mels), EMBED_DIM), np.float32)
        for b0 in range(0, len(mels), _BATCH):
            out[b0:b0 + _BATCH] = self._forward(mels[b0:b0 + _BATCH])
        return out

    def _forward(self, x: np.ndarray) -> np.ndarray:
        """LSTM stack, linear, ReLU and L2 norm over one batch (batch, T, 40)."""
        n, steps, _ = x.shape
        x = np.ascontiguousarray(x.transpose(1, 0, 2))  # time-major: each step's rows are contiguous
        for k, layer in enumerate(self.layers):
            # The input projection of every step at once: one large product
            # instead of 160 small ones.
            gates_in = x.reshape(steps * n, -1) @ layer.w_ih_t
            gates_in += layer.bias
            x = self._run_layer(gates_in.reshape(steps, n, 4 * HIDDEN), layer.w_hh_t,
                                keep_sequence=k < N_LAYERS - 1)
        raw = np.maximum(x @ self.linear_t + self.linear_b, 0.0)
        norm = np.linalg.norm(raw, axis=1, keepdims=True)
        # An all-zero ReLU output (never seen on speech) would divide by zero: leave it zero.
        return raw / np.where(norm > 0, norm, 1.0)

    @staticmethod
    def _run_layer(gates_in: np.ndarray, w_hh_t: np.ndarray, *, keep_sequence: bool) -> np.ndarray:
        """The recurrence of one layer over time-major input projections (T, batch, 1024).

        Returns every hidden state (T, batch, 256), or only the last (batch, 256).
        """
        steps, n, _ = gates_in.shape
        h = np.zeros((n, HIDDEN), np.float32)
        c = np.zeros((n, HIDDEN), np.float32)
        gates = np.empty((n, 4 * HIDDEN), np.float32)
        tmp = np.empty((n, HIDDEN), np.float32)
        seq = np.empty((steps, n, HIDDEN), np.float32) if keep_sequence else None
        i, f, o, g = (slice(j * HIDDEN, (j + 1) * HIDDEN) for j in range(4))
        sig = slice(0, 3 * HIDDEN)
        for t in range(steps):
            np.matmul(h, w_hh_t, out=gates)
            gates += gates_in[t]
            np.tanh(gates, out=gates)          # halved sigmoid gates: tanh(x / 2); cell candidate: tanh(x)
            gates[:, sig] += 1.0
            gates[:, sig] *= 0.5               # now sigmoid(x) for input, forget, output
            c *= gates[:, f]
            np.multiply(gates[:, i], gates[:, g], out=tmp)
            c += tmp
            np.tanh(c, out=h)
            h *= gates[:, o]
            if seq is not None:
                seq[t] = h
        return seq if keep_sequence else h

    # --- spans -------------------------------------------------------------------------------

    def embed_windows(self, y: np.ndarray, spans: np.ndarray | list[tuple[int, int]], *,
                      partials: int = 1) -> np.ndarray:
        """One embedding per span of a signal (e.g. per analysis window).

        Each span is raised to -30 dBFS if quieter (Resemblyzer's volume
        normalisation), then cut into ``partials`` partials of 160 frames
        (1.6 s): one centred in the span, or several evenly spread over it
        whose embeddings are averaged and renormalised (as
        ``embed_utterance``). Spans shorter than 1.6 s are zero-padded at
        the end, as Resemblyzer pads short utterances.

        Parameters
        ----------
        y : np.ndarray, shape (n,)
            Mono float samples at 16 kHz.
        spans : array-like of int, shape (m, 2)
            ``[start, end)`` sample ranges within ``y``.
        partials : int, keyword-only
            Partials per span (>= 1).

        Returns
        -------
        np.ndarray, shape (m, 256), float32
            L2-normalised embeddings, in the order of ``spans``.

        Raises
        ------
        ParameterError
            Spans outside ``y``, empty spans, or ``partials < 1``.
        """
        mels = self.span_mels(y, spans, partials=partials)
        emb = self.embed_mels(mels.reshape(-1, PARTIAL_FRAMES, N_MELS))
        return pool_partials(emb, partials=partials)

    def span_mels(self, y: np.ndarray, spans: np.ndarray | list[tuple[int, int]], *,
                  partials: int = 1) -> np.ndarray:
        """The mel partials :meth:`embed_windows` feeds the network, shape (m, partials, 160, 40).

        Lets a caller gather the partials of many short files into one
        batch for :meth:`embed_mels` (then :func:`pool_partials`).
        Parameters and errors as :meth:`embed_windows`.
        """
        spans = np.asarray(spans, np.int64).reshape(-1, 2)
        if partials < 1:
            raise ParameterError(f"partials must be at least 1, got {partials}")
        if len(spans) and (spans[:, 0].min() < 0 or spans[:, 1].max() > len(y)
                           or (spans[:, 1] <= spans[:, 0]).any()):
            raise ParameterError("spans must be non-empty [start, end) ranges inside the signal")
        if not len(spans):
            return np.zeros((0, partials, PARTIAL_FRAMES, N_MELS), np.float32)
        return np.stack([self._span_partials(y[a:b], partials) for a, b in spans])

    def _span_partials(self, seg: np.ndarray, partials: int) -> np.ndarray:
        """Mel partials of one span, shape (partials, 160, 40)."""
        seg = normalize_volume(seg)
        need = (PARTIAL_FRAMES - 1) * HOP + 1  # samples giving 160 centred frames
        if len(seg) < need:
            seg = np.pad(seg, (0, need - len(seg)))
        mel = self.mel_frames(seg)
        extra = len(mel) - PARTIAL_FRAMES
        if partials == 1:
            starts = [extra // 2]
        else:
            starts = np.linspace(0, extra, partials).round().astype(int)
        return np.stack([mel[s:s + PARTIAL_FRAMES] for s in starts])


def pool_partials(emb: np.ndarray, *, partials: int) -> np.ndarray:
    """Average each span's ``partials`` consecutive partial embeddings and renormalise: (m, 256)."""
    emb = emb.reshape(-1, partials, EMBED_DIM)
    if partials == 1:
        return emb[:, 0]
    mean = emb.mean(axis=1)
    return (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)


def normalize_volume(y: np.ndarray, *, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Raise a signal to ``target_dbfs`` RMS (dBFS) if it is quieter; never lower it.

    Resemblyzer's ``normalize_volume(..., increase_only=True)``: the encoder
    was trained on speech at that level or louder. Digital silence is
    returned unchanged.
    """
    y = np.asarray(y, np.float32)
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if len(y) else 0.0
    if rms <= 0.0:
        return y
    change_db = target_dbfs - 20 * np.log10(rms)
    if change_db <= 0:
        return y
    return (y * np.float32(10 ** (change_db / 20))).astype(np.float32)


def load_encoder(path: Path | str | None = None) -> SpeakerEncoder:
    """Load the exported encoder, refusing weights whose sha256 differs from their card.

    Parameters
    ----------
    path : Path or str or None
        The ``.npz`` weights; default: ``speaker_encoder.npz`` in the models
        folder (``$DRAMAPIC_MODELS`` or the shipped one). Its card
        ``speaker_encoder.json`` must lie beside it.

    Raises
    ------
    ModelError
        Missing, altered or malformed weights.
    """
    if path is None:
        from .models import default_models_dir

        path = default_models_dir() / f"{ENCODER_NAME}.npz"
    path = Path(path)
    card_path = path.with_suffix(".json")
    if not path.is_file() or not card_path.is_file():
        raise ModelError(f"speaker encoder not found: {path} and {card_path.name} "
                         "(run: dramapic-subs-train export-encoder)")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{card_path}: unreadable card ({exc})") from None
    if sha256_file(path) != card.get("sha256"):
        raise ModelError(f"{path}: sha256 does not match {card_path.name}; refusing altered weights")
    # allow_pickle=False: the file holds plain arrays only, so nothing in it can run code.
    with np.load(path, allow_pickle=False) as npz:
        weights = {k: npz[k] for k in npz.files}
    return SpeakerEncoder(weights)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine distance (1 - cos) between two arrays of embeddings, shape (m,)."""
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return 1.0 - num / np.maximum(den, 1e-12)


# Each window's row of speaker embedding.
EmbeddingWindows = WindowRows


class EmbeddingStream:
    """Speaker embeddings over a stream of sample blocks, one per window of ``grid``.

    The encoder costs ~10 ms of CPU per window, several times the rest of the
    analysis, so only every ``stride``-th window (global index divisible by
    it) is embedded and each window takes the embedding of the nearest
    embedded one: a voice holds for seconds, and the gender is decided per
    turn. ``stride=1`` embeds every window (training).
    """

    def __init__(self, encoder: SpeakerEncoder, grid, *, stride: int = 1) -> None:
        if grid.sr != SR:
            raise ParameterError(f"the speaker encoder runs at {SR} Hz, not {grid.sr} Hz")
        self.encoder, self.grid, self.stride = encoder, grid, max(1, int(stride))
        self._buf = np.zeros(0, np.float32)
        self._buf0 = 0                 # sample index of _buf[0]
        self._embedded: dict[int, np.ndarray] = {}
        self._next_embed = 0           # next window index to embed (a multiple of stride)
        self._next_window = 0          # next window to emit
        self.n_samples = 0

    def push(self, block: np.ndarray) -> EmbeddingWindows:
        """Add samples; return the windows whose embedding is now known."""
        self.n_samples += len(block)
        self._buf = np.concatenate([self._buf, np.asarray(block, np.float32)])
        self._embed(final=False)
        return self._emit(final=False)

    def finish(self) -> EmbeddingWindows:
        """End of stream: embed and emit the rest."""
        self._embed(final=True)
        return self._emit(final=True)

    def _embed(self, final: bool) -> None:
        n_windows = self.grid.n_cues(self.n_samples)
        todo = []
        i = self._next_embed
        while i < n_windows:
            start, end = self.grid.span(i, self.n_samples if final else None)
            if not final and end > self.n_samples:
                break
            todo.append((i, start, min(end, self.n_samples)))
            i += self.stride
        self._next_embed = i
        last = n_windows - 1
        if final and last > 0 and last % self.stride:  # the last window has no later embedded neighbour
            todo.append((last, *self.grid.span(last, self.n_samples)))
        if todo:
            spans = np.array([(a - self._buf0, b - self._buf0) for _, a, b in todo])
            emb = self.encoder.embed_windows(self._buf, spans)
            self._embedded.update({k: e for (k, _, _), e in zip(todo, emb)})
        # Keep the samples a later window may still need: from the next one to embed, or the last one so far.
        keep_from = self.grid.span(min(self._next_embed, max(last, 0)))[0]
        if keep_from > self._buf0:
            self._buf = self._buf[keep_from - self._buf0:]
            self._buf0 = keep_from

    def _emit(self, final: bool) -> EmbeddingWindows:
        n_windows = self.grid.n_cues(self.n_samples) if final else None
        rows, index = [], []
        i = self._next_window
        while n_windows is None or i < n_windows:
            near = self._nearest(i, n_windows)
            if near is None:
                break
            rows.append(near)
            index.append(i)
            i += 1
        self._next_window = i
        for k in [k for k in self._embedded if k < i - self.stride]:  # no later window needs them
            del self._embedded[k]
        X = np.array(rows, np.float32).reshape(-1, EMBED_DIM)
        return EmbeddingWindows(np.array(index, int), X)

    def _nearest(self, i: int, n_windows: int | None) -> np.ndarray | None:
        """The embedding of the embedded window closest to ``i`` (the normalised mean of both on a tie,
        so a window between two voices leans to neither), or None while it is not known yet."""
        below = i - i % self.stride
        above = below + self.stride
        if n_windows is not None and above >= n_windows:  # past the end: the last window was embedded
            above = n_windows - 1
        if i == below or above == below:
            return self._embedded.get(below)
        if below not in self._embedded or above not in self._embedded:
            return None
        if i - below != above - i:
            return self._embedded[below if i - below < above - i else above]
        mean = self._embedded[below] + self._embedded[above]
        return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def embedding_plan(wanted: np.ndarray, *, stride: int, points: Iterable[int] | None = None) -> list[tuple[int, ...]]:
    """Which embedded windows each window takes, when only ``wanted`` windows need one.

    Inside each run of wanted windows, every ``stride``-th window from the
    run's start and the run's last window are embedded (or the windows in
    ``points``, when given: what :func:`refined_points` or the stream chose);
    the others take the nearest of those in the same run (both's mean on a
    tie), so a voice's embedding never comes from across a pause. Unwanted
    windows take none (a zero embedding).
    """
    plan: list[tuple[int, ...]] = [()] * len(wanted)
    chosen = None if points is None else set(int(k) for k in points)
    for a, b in _runs(wanted):
        run = _stride_points(a, b, stride) if chosen is None else sorted(k for k in chosen if a <= k <= b)
        for i in range(a, b + 1):
            gap = min(abs(k - i) for k in run)
            plan[i] = tuple(k for k in run if abs(k - i) == gap)
    return plan


def refined_points(wanted: np.ndarray, X: np.ndarray, *, stride: int, refine: float | None) -> list[int]:
    """The windows :class:`VoicedEmbeddingStream` embeds, worked out from every window's embedding ``X``.

    The stride points of :func:`embedding_plan`; and where two neighbouring
    points of one run differ by more than ``refine`` (cosine distance), the
    windows between them too: the voice may change there, and a window
    that took the other voice's embedding would get that voice's gender.
    """
    points = set()
    for a, b in _runs(wanted):
        run = _stride_points(a, b, stride)
        points.update(run)
        if refine is None:
            continue
        for p, q in zip(run, run[1:]):
            if q - p > 1 and cosine_distance(X[p:p + 1], X[q:q + 1])[0] > refine:
                points.update(range(p + 1, q))
    return sorted(points)


def planned_rows(embedded, plan: list[tuple[int, ...]], *, width: int = EMBED_DIM, dtype=np.float32) -> np.ndarray:
    """Each window's row under ``plan`` (:func:`embedding_plan`): the normalised mean of its sources'
    embeddings (``embedded[k]``, a mapping or an array), zeros where it has none. Shape (len(plan), width)."""
    X = np.zeros((len(plan), width), dtype)
    for i, sources in enumerate(plan):
        if sources:
            mean = np.sum([embedded[k] for k in sources], axis=0)
            X[i] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return X


def _stride_points(a: int, b: int, stride: int) -> list[int]:
    """The windows embedded in the voiced run ``a``-``b`` (inclusive): every ``stride``-th from ``a``, and ``b``."""
    return sorted(set(range(a, b + 1, max(1, stride))) | {b})


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    m = np.asarray(mask, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], m, [False]]).astype(int)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


class VoicedEmbeddingStream:
    """Speaker embeddings of the windows where a voice is likely, decided as the audio streams by.

    The encoder is the analysis's costliest step (~10 ms of CPU per window),
    so the product runs it only where the sound-type model finds a voice
    likely. The pipeline tells this stream, with each block, which further
    windows are wanted (in window order, as the sound model gets to them);
    the windows :func:`embedding_plan` would pick are embedded as soon as
    their samples are here, in the same decode pass as every other input.
    With ``refine`` (a cosine distance), once two neighbouring points of a
    run are embedded and differ by more than it, the windows between them
    are embedded too (:func:`refined_points`): the voice may change there,
    and a neighbour's embedding would carry the other voice. Each window
    then takes its nearest embedded one's, as :func:`embedding_plan` with
    the windows actually embedded.
    """

    def __init__(self, encoder: SpeakerEncoder, grid, *, stride: int = 1, refine: float | None = None) -> None:
        if grid.sr != SR:
            raise ParameterError(f"the speaker encoder runs at {SR} Hz, not {grid.sr} Hz")
        self.encoder, self.grid, self.stride = encoder, grid, max(1, int(stride))
        self.refine = refine            # cosine distance between neighbouring points that embeds the windows between
        self._run = -1                  # id of the latest run of wanted windows
        self._last: tuple[int, int] | None = None  # (window, run) of the last planned point embedded
        self._wanted: list[bool] = []   # the decision for each window so far
        self._run_start: int | None = None  # first window of the wanted run still open
        self._todo: list[tuple[int, int]] = []  # planned (window, run) waiting for their samples
        self._extra: list[int] = []     # windows a refinement asked for, waiting for the next batch
        self._embedded: dict[int, np.ndarray] = {}
        self._buf = np.zeros(0, np.float32)
        self._buf0 = 0                  # sample index of _buf[0]
        self.n_samples = 0

    def push(self, block: np.ndarray, wanted: np.ndarray) -> EmbeddingWindows:
        """Add samples and the decisions for the next windows; embed the planned windows now complete.

        Rows come out only at :meth:`finish` (a window may take a later
        one's embedding), so this returns none.
        """
        self.n_samples += len(block)
        self._buf = np.concatenate([self._buf, np.asarray(block, np.float32)])
        self._decide(wanted)
        self._embed(final=False)
        return EmbeddingWindows.concat([], width=EMBED_DIM)

    def finish(self, wanted: np.ndarray) -> EmbeddingWindows:
        """The last decisions; every window's embedding (zeros where none is wanted)."""
        self._decide(wanted)
        if self._run_start is not None:
            self._close_run(len(self._wanted) - 1)
        self._embed(final=True)
        plan = embedding_plan(np.array(self._wanted, bool), stride=self.stride, points=self._embedded)
        return EmbeddingWindows(np.arange(len(plan)), planned_rows(self._embedded, plan))

    def _decide(self, wanted: np.ndarray) -> None:
        """Plan as :func:`embedding_plan`: each run's first window, every ``stride``-th after it, its last."""
        for w in np.asarray(wanted, bool):
            i = len(self._wanted)
            if w and self._run_start is None:
                self._run_start = i
                self._run += 1
                self._todo.append((i, self._run))
            elif w and (i - self._run_start) % self.stride == 0:
                self._todo.append((i, self._run))
            elif not w and self._run_start is not None:
                self._close_run(i - 1)
            self._wanted.append(bool(w))

    def _close_run(self, last: int) -> None:
        if (last - self._run_start) % self.stride:  # not already planned as a stride point
            self._todo.append((last, self._run))
        self._run_start = None

    def _embed(self, final: bool) -> None:
        """Embed ready windows in batches of :data:`GATED_BATCH` (all that are left at the end).

        A batch holds the windows a refinement asked for first, then planned
        windows whose samples are complete. Batches of one size let the
        allocator reuse the encoder's buffers (batches of mixed sizes grew
        the heap by ~150 MB over 10 minutes of dialogue).
        """
        while True:
            ready = []
            for window, run in self._todo:
                if not final and self.grid.span(window)[1] > self.n_samples:
                    break
                ready.append((window, run))
            pool = [(w, None) for w in self._extra] + ready
            if not pool or (not final and len(pool) < GATED_BATCH):
                break
            take = pool if final else pool[:GATED_BATCH]
            planned = [(w, r) for w, r in take if r is not None]
            del self._extra[:len(take) - len(planned)]
            del self._todo[:len(planned)]
            spans = [self.grid.span(w, self.n_samples) for w, _ in take]
            self._embedded.update(zip([w for w, _ in take],
                                      self._embed_spans([(a, min(b, self.n_samples)) for a, b in spans])))
            self._refine(planned)
        # Keep what a planned or queued window, an open run's possible last window, or a refinement may
        # still need.
        first = self._todo[0][0] if self._todo else max(0, len(self._wanted) - 1)
        if self._extra:
            first = min(first, self._extra[0])
        if self.refine is not None and self._last is not None:
            first = min(first, self._last[0] + 1)
        keep_from = min(self.grid.span(first)[0], self.n_samples)
        if keep_from > self._buf0:
            self._buf = self._buf[keep_from - self._buf0:]
            self._buf0 = keep_from

    def _embed_spans(self, spans: list[tuple[int, int]]) -> np.ndarray:
        """Embeddings of sample spans (absolute sample indices) still in the buffer."""
        return self.encoder.embed_windows(self._buf, np.array([(a - self._buf0, b - self._buf0) for a, b in spans]))

    def _refine(self, points: list[tuple[int, int]]) -> None:
        """Queue for the next batch the windows between two neighbouring points of a run whose voices
        differ (see :func:`refined_points`); their samples are here, as they end before the later point's."""
        if self.refine is None:
            return
        for k, run in points:
            if self._last is not None and self._last[1] == run and k - self._last[0] > 1 and \
                    cosine_distance(self._embedded[self._last[0]][None], self._embedded[k][None])[0] > self.refine:
                self._extra += range(self._last[0] + 1, k)
            self._last = (k, run)
