"""The analysis of one input: what the stages below the pipeline hand upwards.

Plain arrays in small dataclasses, so writers, the burner and the summary
read one thing and never reach back into the analysis.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # turns.py reads Analysis: import its Turn for annotations only
    from .turns import Turn



@dataclass(frozen=True)
class ModelOutput:
    """One model's probabilities over the windows.

    Attributes
    ----------
    name, version : str
    labels : list of str
        Column order of ``proba``.
    n_fft, hop : int
        STFT size and frame hop in samples the features were computed with.
    smooth : int
        Moving-average width in windows applied to ``proba``.
    proba : np.ndarray, shape (n_windows, n_labels)
        Rows of silent windows hold NaN: they are not classified.
    """

    name: str
    version: str
    labels: list[str]
    n_fft: int
    hop: int
    smooth: int
    proba: np.ndarray

    def row(self, i: int) -> dict[str, float] | None:
        """Probabilities of window ``i`` by label, or None where it is silent."""
        if np.isnan(self.proba[i]).any():
            return None
        return {lab: float(p) for lab, p in zip(self.labels, self.proba[i])}


@dataclass(frozen=True)
class Analysis:
    """Per-window results for one input file.

    Attributes
    ----------
    source : Path
    duration_s : float
        Decoded audio duration in seconds.
    window_s, hop_s : float
        Window and hop lengths in seconds.
    start_s, end_s : np.ndarray, shape (n,)
        Cue times in seconds; cues tile ``[0, duration_s]``.
    level_db : np.ndarray, shape (n,)
        Window power in dBFS.
    silent : np.ndarray of bool, shape (n,)
        Windows under the silence floor.
    models : list of ModelOutput
    turns : list of Turn
        Speech turns with their gender (see :mod:`dramapic_subs.turns`), in order.
    activity : np.ndarray, shape (n,), or None
        Silero VAD's peak speech probability (0-1) per window, where the sound-type model
        takes it as an input; None otherwise.
    """

    source: Path
    duration_s: float
    window_s: float
    hop_s: float
    start_s: np.ndarray
    end_s: np.ndarray
    level_db: np.ndarray
    silent: np.ndarray
    models: list[ModelOutput]
    turns: list[Turn] = field(default_factory=list)
    activity: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.start_s)

    @cached_property
    def _turn_firsts(self) -> list[int]:
        return [t.first for t in self.turns]

    def turn_at(self, i: int) -> Turn | None:
        """The speech turn holding window ``i``, or None (turns are in order and do not overlap)."""
        k = bisect.bisect_right(self._turn_firsts, i) - 1
        return self.turns[k] if k >= 0 and self.turns[k].last >= i else None

    def model(self, name: str) -> ModelOutput:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def top(self, name: str) -> np.ndarray:
        """Column of model ``name``'s likeliest label per window; -1 on silent windows."""
        proba = self.model(name).proba
        top = np.full(len(self), -1)
        top[~self.silent] = np.argmax(proba[~self.silent], axis=1)
        return top
