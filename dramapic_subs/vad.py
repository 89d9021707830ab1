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
sigmoid. Everything but the LSTM step runs on all chunks of a block at
once; the LSTM step is a 128-wide matrix product per chunk.

The speech probability of each chunk is pooled over the chunks whose centres
fall inside a window into :data:`VAD_FEATURES`, which the sound-type model
takes beside its spectral features.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.fft

from .errors import ModelError, ParameterError
from .windows import WindowGrid, WindowRows

SR = 16000
CHUNK = 512       # samples per network step (32 ms)
CONTEXT = 64      # samples of the previous chunk the network sees
FRAME = 256       # STFT frame of the network's front end
FRAME_HOP = 128
VAD_FEATURES = ["vad_mean", "vad_max", "vad_std", "vad_active"]
ACTIVE = 0.5      # Silero's own default threshold for "speech"
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
    """The network's layers as matrices ready for numpy."""

    def __init__(self, w: SileroWeights) -> None:
        a = w.arrays
        self.window = np.hanning(FRAME + 1)[:-1].astype(np.float32)  # the basis is a periodic Hann DFT
        self.c1, self.b1 = _unfold(a["conv1.weight"]), a["conv1.bias"]
        self.c2, self.b2 = _unfold(a["conv2.weight"]), a["conv2.bias"]
        self.c3, self.b3 = _unfold(a["conv3.weight"]), a["conv3.bias"]
        self.c4, self.b4 = a["conv4.weight"][:, :, 1].T.copy(), a["conv4.bias"]  # one frame: centre tap only
        self.w_ih = a["lstm_cell.weight_ih"].T.copy()
        self.w_hh = a["lstm_cell.weight_hh"].T.copy()
        self.b = a["lstm_cell.bias_ih"] + a["lstm_cell.bias_hh"]
        self.w_out, self.b_out = a["final_conv.weight"][0, :, 0], float(a["final_conv.bias"][0])

    def encode(self, chunks: np.ndarray) -> np.ndarray:
        """Input gates' share of each chunk, shape (n, 512), from chunks of shape (n, 576)."""
        padded = np.concatenate([chunks, chunks[:, -2:-CONTEXT - 2:-1]], axis=1)  # reflect, edge excluded
        idx = np.arange(4)[:, None] * FRAME_HOP + np.arange(FRAME)[None, :]
        mag = np.abs(scipy.fft.rfft(padded[:, idx] * self.window, axis=2, workers=1))  # (n, 4, 129), float32
        x = _relu(_conv(mag, self.c1, self.b1, stride=1))   # (n, 4, 128)
        x = _relu(_conv(x, self.c2, self.b2, stride=2))     # (n, 2, 64)
        x = _relu(_conv(x, self.c3, self.b3, stride=2))     # (n, 1, 64)
        x = _relu(x[:, 0] @ self.c4 + self.b4)              # (n, 128)
        return x @ self.w_ih + self.b

    def run(self, gates_in: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The LSTM cell over the chunks in order; speech probability per chunk and the final state."""
        hs = np.empty((len(gates_in), 128), np.float32)
        w_hh = self.w_hh
        for t in range(len(gates_in)):
            g = gates_in[t] + h @ w_hh
            sig = 0.5 + 0.5 * np.tanh(0.5 * g)  # sigmoid, without exp's overflow; gates i, f, g, o
            c = sig[128:256] * c + sig[:128] * np.tanh(g[256:384])
            h = sig[384:] * np.tanh(c)
            hs[t] = h
        logit = _relu(hs) @ self.w_out + self.b_out
        return 0.5 + 0.5 * np.tanh(0.5 * logit), h, c


def _unfold(w: np.ndarray) -> np.ndarray:
    """Conv1d weight (out, in, 3) as a matrix for frames laid [t-1, t, t+1]: shape (3 * in, out)."""
    return np.transpose(w, (2, 1, 0)).reshape(-1, w.shape[0]).copy()


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, *, stride: int) -> np.ndarray:
    """Kernel-3, padding-1 convolution over axis 1 of (n, frames, channels)."""
    n, t, ch = x.shape
    xp = np.concatenate([np.zeros((n, 1, ch), x.dtype), x, np.zeros((n, 1, ch), x.dtype)], axis=1)
    centres = np.arange(0, t, stride)
    cols = np.concatenate([xp[:, centres], xp[:, centres + 1], xp[:, centres + 2]], axis=2)
    return cols @ w + b


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


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
        rows, index = [], []
        i = self._next_window
        while n_windows is None or i < n_windows:
            start, end = self.grid.span(i, self.n_samples if final else None)
            lo, hi = start // CHUNK, -(-end // CHUNK)  # chunks overlapping [start, end)
            if not final and hi > done:
                break
            lo, hi = min(lo, done - 1), max(min(hi, done), min(lo, done - 1) + 1)
            rows.append(pool(self._proba[max(lo - self._chunk0, 0):hi - self._chunk0]))
            index.append(i)
            i += 1
        self._next_window = i
        drop = min(self.grid.span(i)[0] // CHUNK, done) - self._chunk0
        if drop > 0:
            self._proba = self._proba[drop:]
            self._chunk0 += drop
        X = np.array(rows, np.float32).reshape(-1, len(VAD_FEATURES))
        return VadWindows(np.array(index, int), X)


def pool(p: np.ndarray) -> np.ndarray:
    """:data:`VAD_FEATURES` of one window's chunk probabilities."""
    if len(p) == 0:
        return np.zeros(len(VAD_FEATURES), np.float32)
    return np.array([p.mean(), p.max(), p.std(), (p >= ACTIVE).mean()], np.float32)


def vad_windows(y: np.ndarray, *, weights: SileroWeights, grid: WindowGrid) -> VadWindows:
    """Pooled speech activity of every window of a whole signal (training's path, the product's code)."""
    stream = VadStream(weights, grid)
    return VadWindows.concat([stream.push(y), stream.finish()])


def chunk_proba(y: np.ndarray, *, weights: SileroWeights) -> np.ndarray:
    """Silero's speech probability of each 512-sample chunk of a whole signal (for checks and peers)."""
    runner = ChunkRunner(weights)
    return np.concatenate([runner.push(y), runner.finish()])
