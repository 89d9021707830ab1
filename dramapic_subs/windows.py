"""Sliding analysis windows and the caption cues they map to.

Cue ``i`` covers ``[i * hop, (i + 1) * hop)`` seconds, so cues tile the file
with no gap and no overlap. Its window is ``window`` seconds centred on the
cue's centre (clipped at the file's ends), so every caption describes the
sound around the moment it is shown.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ParameterError

DEFAULT_WINDOW_S = 2.0
DEFAULT_HOP_S = 1.0


@dataclass(frozen=True)
class WindowGrid:
    """Window and hop lengths, in samples at ``sr``.

    Build it with :func:`make_grid`.
    """

    sr: int
    window: int
    hop: int

    @property
    def window_s(self) -> float:
        return self.window / self.sr

    @property
    def hop_s(self) -> float:
        return self.hop / self.sr

    def n_cues(self, n_samples: int) -> int:
        """Number of cues for a signal of ``n_samples`` samples."""
        return math.ceil(n_samples / self.hop) if n_samples > 0 else 0

    def span(self, i: int, n_samples: int | None = None) -> tuple[int, int]:
        """Sample span ``[start, end)`` of window ``i``.

        Without ``n_samples`` (length still unknown while streaming) only
        the start is clipped.
        """
        centre2 = (2 * i + 1) * self.hop  # twice the centre: stays integral
        start = max(0, (centre2 - self.window) // 2)
        end = (centre2 + self.window) // 2
        if n_samples is not None:
            end = min(end, n_samples)
        return start, end

    def cue_times(self, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """Start and end time of each cue in seconds; the last ends at the file's end."""
        n = self.n_cues(n_samples)
        starts = np.arange(n) * self.hop
        ends = np.minimum(starts + self.hop, n_samples)
        return starts / self.sr, ends / self.sr


def make_grid(*, sr: int, window_s: float = DEFAULT_WINDOW_S, hop_s: float = DEFAULT_HOP_S) -> WindowGrid:
    """Check and convert window and hop lengths given in seconds.

    Raises
    ------
    ParameterError
        If the hop is not positive, the window is shorter than the hop, or
        either is outside 0.1-30 seconds.
    """
    for name, value in (("window", window_s), ("hop", hop_s)):
        if not (0.1 <= value <= 30.0):
            raise ParameterError(f"--{name} must be between 0.1 and 30 seconds, got {value}")
    if window_s < hop_s:
        raise ParameterError(f"--window ({window_s} s) must not be shorter than --hop ({hop_s} s)")
    return WindowGrid(sr=sr, window=round(window_s * sr), hop=round(hop_s * sr))


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive True windows as ``(first, last)`` index pairs (inclusive)."""
    m = np.asarray(mask, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], m, [False]]).astype(int)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


@dataclass
class WindowRows:
    """Rows of consecutive windows, as a stream over the audio hands them out.

    Attributes
    ----------
    index : np.ndarray of int, shape (m,)
        Window (cue) indices.
    X : np.ndarray, shape (m, width)
        One row of values per window.
    """

    index: np.ndarray
    X: np.ndarray

    @staticmethod
    def concat(parts: list["WindowRows"], *, width: int = 0) -> "WindowRows":
        """Parts in order as one; ``width`` columns when there are no parts."""
        if not parts:
            return WindowRows(np.zeros(0, int), np.zeros((0, width), np.float32))
        return WindowRows(np.concatenate([p.index for p in parts]), np.vstack([p.X for p in parts]))
