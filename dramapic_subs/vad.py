"""Speech activity from Silero VAD, run in numpy, pooled per window.

Silero VAD (MIT) is a small network trained on thousands of hours of
speech and non-speech; it tells talking from laughter, clicks, knocks and
other short vocal or impulsive sounds far better than summary spectral
features do. Its weights come from the ``silero-vad`` wheel at training time
(``dramapic_subs.train.export_vad``) and ship in ``models/silero_vad.npz``;
here they run in numpy, so neither torch nor onnxruntime is needed.

The network (16 kHz, v5/v6): each 512-sample chunk, with the 64 samples
before it as context and 64 reflected samples after, is cut into four
256-sample Hann frames; their magnitude spectra go through four small
convolutions, an LSTM cell that carries state from chunk to chunk, and a
sigmoid. Everything but the LSTM step runs on many chunks at once; the
LSTM steps run one chunk after another, a 128 x 512 matrix-vector product
each. They cannot be cut into segments run side by side from a fresh
state: a few of the cell's units integrate over minutes (their state
reaches +-100), so a restarted segment differs for minutes, not chunks
(``benchmarks/RESULTS.md``, "Silero VAD CPU").

The speech probability of each chunk is pooled over the chunks whose centres
fall inside a window into :data:`VAD_FEATURES`, which the sound-type model
takes beside its spectral features.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError, ParameterError
from .fft import rfft
from .windows import WindowGrid, WindowRows

SR = 16000
CHUNK = 512       # samples per network step (32 ms)
CONTEXT = 64      # samples of the previous chunk the network sees
FRAME = 256       # STFT frame of the network's front end
FRAME_HOP = 128
HIDDEN = 128      # LSTM state width
ENCODE_BATCH = 256  # chunks per pass of the front end (8 s)
VAD_FEATURES = ["vad_mean", "vad_max", "vad_std", "vad_active"]
ACTIVE = 0.5      # Silero's own default threshold for "speech"
PEAK = "vad_max"  # the column that says whether Silero heard any speech in a window (its peak chunk)
WEIGHT_NAMES = ("stft_conv.weight", "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                "conv3.weight", "conv3.bias", "conv4.weight", "conv4.bias", "lstm_cell.weight_ih",
                "lstm_cell.weight_hh", "lstm_cell.bias_ih", "lstm_cell.bias_hh", "final_conv.weight",
                "final_conv.bias")


@dataclass(frozen=True)
class SileroWeights:
    """The network's arrays, float32, in the shapes of the original model."""

    arrays: dict[str, np.ndarray]

    @staticmethod
    def load(path: Path) -> "SileroWeights":
        """Read ``silero_vad.npz``; refuse a file that lacks any array."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k].astype(np.float32) for k in z.files}
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: unreadable VAD weights ({exc})") from None
        missing = [k for k in WEIGHT_NAMES if k not in arrays]
        if missing:
            raise ModelError(f"{path}: VAD weights lack {', '.join(missing)}")
        return SileroWeights(arrays)


class _Net:
    """The network's layers as matrices ready for numpy.

    The LSTM's gate blocks are reordered from PyTorch's (input, forget,
    cell, output) to (input, forget, output, cell) and the three sigmoid
    gates' rows halved, so that one ``tanh`` over all 512 pre-activations
    gives every activation: ``sigmoid(x) = (tanh(x / 2) + 1) / 2``. Halving
    is exact in floating point, so the numbers are those of the plain cell.
    """

    def __init__(self, w: SileroWeights) -> None:
        a = w.arrays
        self.window = np.hanning(FRAME + 1)[:-1].astype(np.float32)  # the basis is a periodic Hann DFT
        self.c1, self.b1 = _unfold(a["conv1.weight"]), a["conv1.bias"]
        self.c2, self.b2 = _unfold(a["conv2.weight"]), a["conv2.bias"]
        self.c3, self.b3 = _unfold(a["conv3.weight"]), a["conv3.bias"]
        self.c4, self.b4 = a["conv4.weight"][:, :, 1].T.copy(), a["conv4.bias"]  # one frame: centre tap only
        scale = np.r_[np.full(3 * HIDDEN, 0.5, np.float32), np.ones(HIDDEN, np.float32)]
        self.w_ih = np.ascontiguousarray(_to_ifoc(a["lstm_cell.weight_ih"]).T * scale)
        self.w_hh = np.ascontiguousarray(_to_ifoc(a["lstm_cell.weight_hh"]).T * scale)
        self.b = _to_ifoc(a["lstm_cell.bias_ih"] + a["lstm_cell.bias_hh"]) * scale
        self.w_out, self.b_out = a["final_conv.weight"][0, :, 0], float(a["final_conv.bias"][0])

    def encode(self, chunks: np.ndarray) -> np.ndarray:
        """Input gates' share of each chunk, shape (n, 512), from chunks of shape (n, 576).

        Runs :data:`ENCODE_BATCH` chunks at a time: their intermediate arrays
        (~1 MB) stay in cache, which makes the front end ~1.5x faster than
        one pass over a 30 s block (~15 MB).
        """
        gates = np.empty((len(chunks), 4 * HIDDEN), np.float32)
        for i in range(0, len(chunks), ENCODE_BATCH):
            gates[i:i + ENCODE_BATCH] = self._encode(chunks[i:i + ENCODE_BATCH])
        return gates

    def _encode(self, chunks: np.ndarray) -> np.ndarray:
        x = self.magnitudes(chunks)                                   # (n, 4 * 129)
        x = _conv_frames(x, self.c1, self.b1, n_frames=4, stride=1)   # (n, 4 * 128)
        x = _conv_frames(x, self.c2, self.b2, n_frames=4, stride=2)   # (n, 2 * 64)
        x = _conv_frames(x, self.c3, self.b3, n_frames=2, stride=2)   # (n, 64)
        x = _relu(x @ self.c4 + self.b4)                              # (n, 128)
        gates = x @ self.w_ih
        gates += self.b
        return gates

    def magnitudes(self, chunks: np.ndarray) -> np.ndarray:
        """Magnitude spectra of each chunk's four Hann frames, shape (n, 4 * 129), frames side by side.

        Silero pads each 576-sample chunk (with context) by reflecting its last
        64 samples, edge excluded; only the fourth frame reaches into that pad.
        """
        n = len(chunks)
        frames = np.empty((n, 4, FRAME), np.float32)
        frames[:, :3] = np.lib.stride_tricks.sliding_window_view(chunks, FRAME, axis=1)[:, :3 * FRAME_HOP:FRAME_HOP]
        own = CHUNK + CONTEXT - 3 * FRAME_HOP                         # 192 samples of the chunk itself
        frames[:, 3, :own] = chunks[:, 3 * FRAME_HOP:]
        frames[:, 3, own:] = chunks[:, -2:-CONTEXT - 2:-1]
        frames *= self.window
        return np.abs(rfft(frames, axis=2)).reshape(n, -1)  # float32

    def run(self, gates_in: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The LSTM cell over the chunks in order; speech probability per chunk and the final state.

        Each step works in place on preallocated arrays: at this size numpy's
        per-call overhead and reading ``w_hh`` (256 kB) set the cost, not
        arithmetic.
        """
        n = len(gates_in)
        hs = np.empty((n + 1, HIDDEN), np.float32)  # hs[t + 1]: hidden state after chunk t
        hs[0] = h
        c = np.array(c, np.float32)
        gates = np.empty(4 * HIDDEN, np.float32)
        tmp = np.empty(HIDDEN, np.float32)
        sig, i, f, o, g = (gates[:3 * HIDDEN], gates[:HIDDEN], gates[HIDDEN:2 * HIDDEN],
                           gates[2 * HIDDEN:3 * HIDDEN], gates[3 * HIDDEN:])
        w_hh = self.w_hh
        for t in range(n):
            np.dot(hs[t], w_hh, out=gates)
            gates += gates_in[t]
            np.tanh(gates, out=gates)   # halved sigmoid gates: tanh(x / 2); cell candidate: tanh(x)
            sig += 1.0
            sig *= 0.5                  # now sigmoid(x) for input, forget, output
            c *= f
            np.multiply(i, g, out=tmp)
            c += tmp
            np.tanh(c, out=hs[t + 1])
            hs[t + 1] *= o
        logit = _relu(hs[1:]) @ self.w_out + self.b_out
        return 0.5 + 0.5 * np.tanh(0.5 * logit), hs[n].copy(), c


def _unfold(w: np.ndarray) -> np.ndarray:
    """Conv1d weight (out, in, 3) as a matrix for frames laid [t-1, t, t+1]: shape (3 * in, out)."""
    return np.transpose(w, (2, 1, 0)).reshape(-1, w.shape[0]).copy()


def _to_ifoc(w: np.ndarray) -> np.ndarray:
    """Reorder PyTorch's LSTM gate blocks (i, f, g, o) along axis 0 to (i, f, o, g)."""
    i, f, g, o = np.split(w, 4, axis=0)
    return np.concatenate([i, f, o, g], axis=0)


def _conv_frames(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, n_frames: int, stride: int) -> np.ndarray:
    """Kernel-3, padding-1 convolution over frames, then ReLU.

    Parameters
    ----------
    x : np.ndarray, shape (n, n_frames * ch)
        Each row's frames side by side, so any run of neighbouring frames is
        a column slice: every output frame is one matrix product on a view,
        with no copies and no products with the zero padding.
    w : np.ndarray, shape (3 * ch, out)
        Taps for frames [t-1, t, t+1] (:func:`_unfold`).
    b : np.ndarray, shape (out,)
    n_frames, stride : int, keyword-only

    Returns
    -------
    np.ndarray, shape (n, ceil(n_frames / stride) * out)
    """
    ch, width = w.shape[0] // 3, w.shape[1]
    centres = range(0, n_frames, stride)
    y = np.empty((len(x), len(centres), width), np.float32)
    for k, t in enumerate(centres):
        lo, hi = max(t - 1, 0), min(t + 2, n_frames)  # the input frames inside the signal
        taps = slice((lo - t + 1) * ch, (hi - t + 1) * ch)
        np.matmul(x[:, lo * ch:hi * ch], w[taps], out=y[:, k])
    y += b
    return _relu(y, out=y).reshape(len(x), -1)


def _relu(x: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    return np.maximum(x, 0.0, out=out)


# Each window's row of pooled VAD features.
VadWindows = WindowRows


class ChunkRunner:
    """Silero's speech probability of each 512-sample chunk of a stream of blocks.

    The LSTM state runs on across blocks, so a file gives the same numbers
    however it is cut into blocks (training featurizes whole clips, the
    product 30 s blocks).
    """

    def __init__(self, weights: SileroWeights) -> None:
        self.net = _Net(weights)
        self._buf = np.zeros(CONTEXT, np.float32)  # the first chunk's context is silence
        self._h = np.zeros(128, np.float32)
        self._c = np.zeros(128, np.float32)

    def push(self, block: np.ndarray) -> np.ndarray:
        """Add samples; return the probabilities of the chunks now complete."""
        self._buf = np.concatenate([self._buf, np.asarray(block, np.float32)])
        n = (len(self._buf) - CONTEXT) // CHUNK
        if n <= 0:
            return np.zeros(0, np.float32)
        view = np.lib.stride_tricks.sliding_window_view(self._buf, CHUNK + CONTEXT)[:n * CHUNK:CHUNK]
        p, self._h, self._c = self.net.run(self.net.encode(view), self._h, self._c)
        self._buf = self._buf[n * CHUNK:].copy()
        return p.astype(np.float32)

    def finish(self) -> np.ndarray:
        """The last partial chunk, zero-padded as Silero's own tools do."""
        tail = (len(self._buf) - CONTEXT) % CHUNK
        return self.push(np.zeros(CHUNK - tail, np.float32)) if tail else np.zeros(0, np.float32)


class VadStream:
    """Chunk probabilities of a stream pooled per window of ``grid`` (see :class:`ChunkRunner`)."""

    def __init__(self, weights: SileroWeights, grid: WindowGrid) -> None:
        if grid.sr != SR:
            raise ParameterError(f"Silero VAD runs at {SR} Hz, not {grid.sr} Hz")
        self.runner, self.grid = ChunkRunner(weights), grid
        self._proba = np.zeros(0, np.float32)  # chunk probabilities from chunk _chunk0 on
        self._chunk0 = 0
        self._next_window = 0
        self.n_samples = 0

    def push(self, block: np.ndarray) -> VadWindows:
        """Add samples; return the windows that are now complete."""
        self.n_samples += len(block)
        self._proba = np.concatenate([self._proba, self.runner.push(block)])
        return self._emit(final=False)

    def finish(self) -> VadWindows:
        """End of stream: flush the last chunk and windows."""
        self._proba = np.concatenate([self._proba, self.runner.finish()])
        return self._emit(final=True)

    def _emit(self, final: bool) -> VadWindows:
        done = self._chunk0 + len(self._proba)  # chunks computed so far
        n_windows = self.grid.n_cues(self.n_samples) if final else None
        spans, index = [], []
        i = self._next_window
        while n_windows is None or i < n_windows:
            start, end = self.grid.span(i, self.n_samples if final else None)
            lo, hi = start // CHUNK, -(-end // CHUNK)  # chunks overlapping [start, end)
            if not final and hi > done:
                break
            lo, hi = min(lo, done - 1), max(min(hi, done), min(lo, done - 1) + 1)
            spans.append((max(lo - self._chunk0, 0), hi - self._chunk0))
            index.append(i)
            i += 1
        X = pool_spans(self._proba, np.array(spans, np.int64).reshape(-1, 2))
        self._next_window = i
        drop = min(self.grid.span(i)[0] // CHUNK, done) - self._chunk0
        if drop > 0:
            self._proba = self._proba[drop:]
            self._chunk0 += drop
        return VadWindows(np.array(index, int), X)


def pool(p: np.ndarray) -> np.ndarray:
    """:data:`VAD_FEATURES` of one window's chunk probabilities."""
    if len(p) == 0:
        return np.zeros(len(VAD_FEATURES), np.float32)
    return np.array([p.mean(), p.max(), p.std(), (p >= ACTIVE).mean()], np.float32)


def pool_spans(p: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """:func:`pool` of many windows at once, from running sums instead of a Python loop.

    Parameters
    ----------
    p : np.ndarray, shape (n,)
        Chunk probabilities.
    spans : np.ndarray of int, shape (m, 2)
        Each window's ``[lo, hi)`` range of chunks in ``p``; empty ranges give zeros.

    Returns
    -------
    np.ndarray, shape (m, len(VAD_FEATURES)), float32
        As :func:`pool`, to float32 rounding.
    """
    if not len(spans):
        return np.zeros((0, len(VAD_FEATURES)), np.float32)
    lo, hi = spans[:, 0], spans[:, 1]
    size = np.maximum(hi - lo, 1)
    # float64 running sums: a window's sum is a difference of two, off by ~1e-13 for probabilities.
    p64 = p.astype(np.float64)
    total = np.concatenate([[0.0], np.cumsum(p64)])
    squares = np.concatenate([[0.0], np.cumsum(p64 * p64)])
    active = np.concatenate([[0], np.cumsum(p >= ACTIVE)])
    mean = (total[hi] - total[lo]) / size
    std = np.sqrt(np.maximum((squares[hi] - squares[lo]) / size - mean * mean, 0.0))
    # maximum.reduceat over [lo0, hi0, lo1, hi1, ...]: the even results are the windows' maxima.
    peak = np.maximum.reduceat(np.append(p, 0.0), spans.ravel())[::2]
    X = np.stack([mean, peak, std, (active[hi] - active[lo]) / size], axis=1).astype(np.float32)
    X[hi <= lo] = 0.0
    return X


def vad_windows(y: np.ndarray, *, weights: SileroWeights, grid: WindowGrid) -> VadWindows:
    """Pooled speech activity of every window of a whole signal (training's path, the product's code)."""
    stream = VadStream(weights, grid)
    return VadWindows.concat([stream.push(y), stream.finish()])


def chunk_proba(y: np.ndarray, *, weights: SileroWeights) -> np.ndarray:
    """Silero's speech probability of each 512-sample chunk of a whole signal (for checks and peers)."""
    runner = ChunkRunner(weights)
    return np.concatenate([runner.push(y), runner.finish()])
