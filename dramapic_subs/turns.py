"""Speech turns: runs of voiced windows split where the voice changes, each with one gender.

A gender model that answers window by window flips a speaker back and forth
whenever one window sounds a little lower or higher. A person keeps their
voice for a whole turn, so the product decides gender per turn: windows where
speech (or song) is the likeliest sound are joined into runs, each run is
split where the speaker seems to change, and the turn's gender is the mean
of its windows' log-odds.

Speaker changes are found from a few voice-describing columns of the gender
model's own input (MFCC means, spectral centroid, pitch), standardised with
the training pool's statistics: a change is a local peak of the distance
between the two windows before and the two windows after a point, above a
threshold chosen on concatenations of training clips (never on dev). The
columns, statistics and threshold live in the gender bundle's card
(``turns``), so a retrained model brings its own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .windows import runs

VOICE_COLUMNS = tuple([f"mfcc{i}_mean" for i in range(1, 13)] + ["centroid_mean", "f0_median", "f0_p10", "f0_p90"])
CONTEXT = 2  # windows averaged on each side of a candidate change
VOICE_LABELS = ("speech", "song")  # sound types that carry a voice whose gender is shown


@dataclass(frozen=True)
class TurnModel:
    """How to find speaker changes: which columns, their standardisation, and the threshold.

    Attributes
    ----------
    columns : np.ndarray of int
        Indices of :data:`VOICE_COLUMNS` in the gender model's input.
    mean, scale : np.ndarray
        Standardisation of those columns (training pool's voiced windows).
    threshold : float
        Change score above which a turn is split (RMS of standardised differences).
    """

    columns: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    threshold: float

    def card(self, names: list[str]) -> dict:
        return {"columns": [names[i] for i in self.columns], "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "threshold": self.threshold}

    @staticmethod
    def from_card(entry: dict, names: list[str]) -> "TurnModel":
        return TurnModel(np.array([names.index(c) for c in entry["columns"]]), np.asarray(entry["mean"], float),
                         np.asarray(entry["scale"], float), float(entry["threshold"]))


@dataclass(frozen=True)
class Turn:
    """One speaker's turn: windows ``first`` to ``last`` (inclusive) and its gender probabilities."""

    first: int
    last: int
    proba: np.ndarray  # shape (n_gender_labels,), columns as the gender model's labels


def change_scores(X: np.ndarray, model: TurnModel) -> np.ndarray:
    """Score of a speaker change just before each window (NaN where it cannot be judged).

    ``score[i]`` compares the mean voice of windows ``i-2, i-1`` with that of
    ``i, i+1``: the root-mean-square of their standardised difference.
    """
    v = (X[:, model.columns] - model.mean) / model.scale
    n = len(v)
    out = np.full(n, np.nan)
    if n < 2 * CONTEXT:
        return out
    csum = np.vstack([np.zeros((1, v.shape[1])), np.cumsum(v, axis=0)])
    i = np.arange(CONTEXT, n - CONTEXT + 1)
    before = (csum[i] - csum[i - CONTEXT]) / CONTEXT
    after = (csum[i + CONTEXT] - csum[i]) / CONTEXT
    out[i] = np.sqrt(np.mean((after - before) ** 2, axis=1))
    return out


def split_points(scores: np.ndarray, *, threshold: float) -> np.ndarray:
    """Windows that start a new turn: local maxima of the change score above ``threshold``."""
    s = np.nan_to_num(scores, nan=-np.inf)
    left = np.r_[-np.inf, s[:-1]]
    right = np.r_[s[1:], -np.inf]
    return np.flatnonzero((s > threshold) & (s >= left) & (s > right))


def speech_turns(voice: np.ndarray, X: np.ndarray, gender_proba: np.ndarray, *, model: TurnModel | None) -> list[Turn]:
    """Turns over the voiced windows, each with the mean log-odds of its windows' gender.

    Parameters
    ----------
    voice : np.ndarray of bool, shape (n,)
        Windows where a voice (speech or song) is the likeliest sound.
    X : np.ndarray, shape (n, n_features)
        The gender model's input per window.
    gender_proba : np.ndarray, shape (n, n_labels)
        Per-window gender probabilities (NaN rows for silent windows).
    model : TurnModel or None
        None: every run of voiced windows is one turn.
    """
    turns = []
    for a, b in runs(voice):
        starts = [a]
        if model is not None and b - a + 1 >= 2 * CONTEXT:
            scores = change_scores(X[a:b + 1], model)
            starts += [a + int(k) for k in split_points(scores, threshold=model.threshold) if k > 0]
        for first, nxt in zip(starts, starts[1:] + [b + 1]):
            turns.append(Turn(first, nxt - 1, mean_log_odds(gender_proba[first:nxt])))
    return turns


def mean_log_odds(proba: np.ndarray) -> np.ndarray:
    """Probabilities whose log-odds are the mean of the rows' (rows with NaN skipped)."""
    rows = proba[~np.isnan(proba).any(axis=1)]
    if len(rows) == 0:
        return np.full(proba.shape[1], np.nan)
    logp = np.log(np.clip(rows, 1e-6, 1.0)).mean(axis=0)
    e = np.exp(logp - logp.max())
    return e / e.sum()
