"""Speech turns: runs of voiced windows split where the voice changes, each with one gender.

A gender model that answers window by window flips a speaker back and forth
whenever one window sounds a little lower or higher. A person keeps their
voice for a whole turn, so the product decides gender per turn: windows where
a voice is likely (:func:`dramapic_subs.voice.voice_likely`, the rule that
also gates the speaker encoder and the captions) are joined into runs, each run is
split where the speaker seems to change, and the turn's gender is the mean
of its windows' log-odds.

Speaker changes are found from columns of the gender model's own input:
either a few voice-describing ones (MFCC means, spectral centroid, pitch),
standardised with the training pool's statistics and compared by their RMS
difference, or the speaker embedding, compared by cosine distance. A change
is a local peak of the distance between the mean of the two windows before
and of the two windows after a point, above a threshold. The fit picks the
columns and the threshold on concatenations of training clips (never on
dev); they live in the gender bundle's card (``turns``), so a retrained
model brings its own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .result import Analysis
from .voice import voiced
from .windows import runs

VOICE_COLUMNS = tuple([f"mfcc{i}_mean" for i in range(1, 13)] + ["centroid_mean", "f0_median", "f0_p10", "f0_p90"])
CONTEXT = 2  # windows averaged on each side of a candidate change


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
        Change score above which a turn is split.
    metric : str
        ``rms``: root-mean-square of the standardised difference; ``cosine``:
        one minus the cosine of the two means (for embeddings, whose
        direction is the voice).
    """

    columns: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    threshold: float
    metric: str = "rms"

    def card(self, names: list[str]) -> dict:
        return {"columns": [names[i] for i in self.columns], "mean": self.mean.tolist(),
                "scale": self.scale.tolist(), "threshold": self.threshold, "metric": self.metric}

    @staticmethod
    def from_card(entry: dict, names: list[str]) -> "TurnModel":
        return TurnModel(np.array([names.index(c) for c in entry["columns"]]), np.asarray(entry["mean"], float),
                         np.asarray(entry["scale"], float), float(entry["threshold"]),
                         str(entry.get("metric", "rms")))  # cards before the cosine metric


@dataclass(frozen=True)
class Turn:
    """One speaker's turn: windows ``first`` to ``last`` (inclusive), its times and its gender.

    Attributes
    ----------
    first, last : int
        Window (cue) indices.
    start_s, end_s : float
        Seconds from the start of the file (the first cue's start, the last one's end).
    gender : dict of str -> float
        Probability (0-1) of each gender label for the whole turn.
    """

    first: int
    last: int
    start_s: float
    end_s: float
    gender: dict[str, float]

    @property
    def label(self) -> str:
        """The likelier gender."""
        return max(self.gender, key=self.gender.get)

    @property
    def probability(self) -> float:
        """Probability (0-1) of :attr:`label`."""
        return self.gender[self.label]


def change_scores(X: np.ndarray, model: TurnModel) -> np.ndarray:
    """Score of a speaker change just before each window (NaN where it cannot be judged).

    ``score[i]`` compares the mean voice of windows ``i-2, i-1`` with that of
    ``i, i+1``: the root-mean-square of their standardised difference, or one
    minus their cosine (NaN where either mean is zero: no embedding there).
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
    if model.metric == "cosine":
        norms = np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i] = np.where(norms > 0, 1.0 - np.sum(before * after, axis=1) / norms, np.nan)
    else:
        out[i] = np.sqrt(np.mean((after - before) ** 2, axis=1))
    return out


def split_points(scores: np.ndarray, *, threshold: float) -> np.ndarray:
    """Windows that start a new turn: local maxima of the change score above ``threshold``."""
    s = np.nan_to_num(scores, nan=-np.inf)
    left = np.r_[-np.inf, s[:-1]]
    right = np.r_[s[1:], -np.inf]
    return np.flatnonzero((s > threshold) & (s >= left) & (s > right))


def find_turns(voice: np.ndarray, X: np.ndarray | None, *, model: TurnModel | None,
               gender_proba: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Turns over the voiced windows as ``(first, last)`` window pairs (inclusive).

    A run of voiced windows is split where the voice changes (``model``'s
    change points) and where the gender model's answer changes and holds
    (the likelier gender of three-window medians): in quick dialogue two
    voices follow each other with no pause, and a turn must not span both.

    Parameters
    ----------
    voice : np.ndarray of bool, shape (n,)
        Windows where a voice (speech or song) is likely (:func:`dramapic_subs.voice.voice_likely`).
    X : np.ndarray, shape (n, n_features), or None
        The gender model's input per window.
    model : TurnModel or None
        None (or no ``X``): no change points from the voice columns.
    gender_proba : np.ndarray, shape (n, n_labels), or None
        Per-window gender probabilities; None: no split on gender changes.
    """
    spans = []
    for a, b in runs(voice):
        starts = {a}
        if model is not None and X is not None and b - a + 1 >= 2 * CONTEXT:
            scores = change_scores(X[a:b + 1], model)
            starts |= {a + int(k) for k in split_points(scores, threshold=model.threshold) if k > 0}
        if gender_proba is not None and b > a:
            starts |= {a + int(k) for k in gender_changes(gender_proba[a:b + 1])}
        starts = sorted(starts)
        spans += [(first, nxt - 1) for first, nxt in zip(starts, starts[1:] + [b + 1])]
    return spans


def gender_changes(proba: np.ndarray) -> np.ndarray:
    """Indices (> 0) where the likelier gender of a run's windows changes, after a 3-window median
    (so one stray window neither starts nor ends a turn)."""
    top = np.argmax(np.nan_to_num(proba, nan=0.0), axis=1).astype(float)
    if len(top) >= 3:
        padded = np.r_[top[0], top, top[-1]]
        top = np.median(np.lib.stride_tricks.sliding_window_view(padded, 3), axis=1)
    return np.flatnonzero(np.diff(top) != 0) + 1


def make_turns(spans: list[tuple[int, int]], gender_proba: np.ndarray, labels: list[str], start_s: np.ndarray,
               end_s: np.ndarray) -> list[Turn]:
    """A :class:`Turn` per span, its gender the mean log-odds of its windows' (so confident windows weigh more)."""
    return [Turn(a, b, float(start_s[a]), float(end_s[b]),
                 {lab: float(p) for lab, p in zip(labels, mean_log_odds(gender_proba[a:b + 1]))})
            for a, b in spans]


def speech_turns(analysis: Analysis) -> list[Turn]:
    """The analysis's turns; for an analysis made without them, one turn per run of voiced windows."""
    if analysis.turns:
        return list(analysis.turns)
    gender = analysis.model("gender")
    spans = find_turns(voiced(analysis), None, model=None)
    return make_turns(spans, gender.proba, gender.labels, analysis.start_s, analysis.end_s)


def mean_log_odds(proba: np.ndarray) -> np.ndarray:
    """Probabilities whose log-odds are the mean of the rows' (rows with NaN skipped)."""
    rows = proba[~np.isnan(proba).any(axis=1)]
    if len(rows) == 0:
        return np.full(proba.shape[1], np.nan)
    logp = np.log(np.clip(rows, 1e-6, 1.0)).mean(axis=0)
    e = np.exp(logp - logp.max())
    return e / e.sum()
