"""How likely a voice is in each window: the one rule for "a voice is here".

The gender model's answer means nothing on music or noise. One rule decides
where a voice (speech or song) is likely enough, and serves everything that
needs it: the windows the speaker encoder embeds, the speech turns, and the
captions that show a gender. It asks the sound model (P(speech) + P(song))
and, where that model takes Silero VAD as an input, Silero too (its peak
speech probability in the window): a melody the sound model mistakes for
song has no voice in it for Silero. The timeline fades gender by the sound
model's probability; the JSON keeps every probability regardless.
"""
from __future__ import annotations

from typing import Hashable

import numpy as np

from .errors import ModelError
from .features import SILENCE_FLOOR_DB
from .models import ModelBundle
from .smoothing import context_start, settled
from .result import Analysis, ModelOutput

VOICE_LABELS = ("speech", "song")
# Chosen out of corpus, never on dev: by tools/voice_threshold.py on the 34,091
# original training windows, each predicted by the sound model fitted without
# its corpus (calibrated, smoothed as the product does). Re-run for the sound
# model with the sung-voice columns (temperature 2.22): 0.35 and 0.40 tie
# (balanced error 5.82% and 5.84%); 0.40 stays, as it gives fewer music windows
# a gender (5.0% against 6.2%). Re-run that tool when the sound model is retrained.
VOICE_MIN = 0.4
# ... and Silero VAD must have heard some speech in the window (its peak 32 ms
# chunk at least this likely), where the sound model takes Silero as an input:
# music the sound model takes for song (a chiptune's lead) then shows no gender.
# Same tool, at VOICE_MIN, both views of the calibration (leave one corpus out;
# GroupKFold over speakers and files): 0.02 has the lowest balanced error in
# each (5.43% and 3.24%; none: 5.84% and 3.32%; 0.05: 5.44% and 3.30%). At 0.02
# music windows with a gender fall from 5.0% to 2.6% out of corpus, song keeps
# its gender on 71.6% of windows (72.9% without), speech on 98.9% as before.
ACTIVITY_MIN = 0.02


def sound_activity(sound: ModelBundle, rows: dict) -> np.ndarray | None:
    """Silero's peak speech probability per window from the rows of ``sound``'s inputs (``rows[key]``:
    an array of that input's columns), or None when no input of the sound model gives it."""
    rep = next((r for r in sound.inputs if hasattr(r, "activity")), None)
    return None if rep is None else rep.activity(rows[rep.key])


def voice_probability(analysis: Analysis) -> np.ndarray:
    """P(speech) + P(song) per window.

    Returns
    -------
    np.ndarray, shape (n_windows,)
        Probability (0-1) that a voice is heard; NaN on silent windows.
    """
    return sound_voice_probability(analysis.model("sound_type"))


def sound_voice_probability(sound: ModelOutput) -> np.ndarray:
    """P(speech) + P(song) per window of a sound-type model's output (NaN where silent)."""
    return _voice_columns(sound.proba, sound.labels)


def _voice_columns(proba: np.ndarray, labels: list[str]) -> np.ndarray:
    cols = [labels.index(lab) for lab in VOICE_LABELS if lab in labels]
    return proba[:, cols].sum(axis=1)


def _likely(proba: np.ndarray, labels: list[str], silent: np.ndarray, activity: np.ndarray | None) -> np.ndarray:
    """The rule itself, on sound-type probabilities with columns ``labels``."""
    likely = ~np.asarray(silent, bool) & (np.nan_to_num(_voice_columns(proba, labels), nan=0.0) >= VOICE_MIN)
    if activity is not None:
        likely &= np.nan_to_num(activity, nan=0.0) >= ACTIVITY_MIN
    return likely


def voice_likely(sound: ModelOutput, silent: np.ndarray, *, activity: np.ndarray | None = None) -> np.ndarray:
    """Non-silent windows where P(speech) + P(song) >= ``VOICE_MIN`` and, given Silero's peak speech
    probability ``activity``, that is >= ``ACTIVITY_MIN`` (bool, shape (n_windows,))."""
    return _likely(sound.proba, sound.labels, silent, activity)


def voiced(analysis: Analysis) -> np.ndarray:
    """Windows where a voice is likely enough to show its gender (bool, shape (n_windows,))."""
    return voice_likely(analysis.model("sound_type"), analysis.silent, activity=analysis.activity)


class VoiceGate:
    """:func:`voice_likely`, decided window by window while the audio streams by.

    Inputs that cost much (the speaker encoder) run only where a voice is
    likely, in the same decode pass as the rest. The gate is handed each
    block's rows of the other inputs; once every input of the sound-type
    model has a window, it predicts it, smooths as the finished analysis
    will (waiting ``smooth // 2`` windows for the right-hand neighbours) and
    hands out the decisions in window order: the same windows
    :func:`voice_likely` finds on the finished analysis.

    Parameters
    ----------
    sound : ModelBundle or None
        The sound-type model; None: every non-silent window is wanted.
    level_key : hashable
        The input whose rows carry ``level_db`` (the spectral features).
    """

    def __init__(self, sound: ModelBundle | None, *, level_key: Hashable) -> None:
        if sound is not None and any(getattr(rep, "gated", False) for rep in sound.inputs):
            raise ModelError("the sound-type model cannot itself take an input that waits for its answer")
        self.sound, self.level_key = sound, level_key
        self.inputs = list(sound.inputs) if sound is not None else []
        self.width = sound.smooth if sound is not None else 1
        self.half = self.width // 2
        self.stops = sound is not None and sound.change is not None  # smoothing stops where the sound changes
        self._pending: dict[Hashable, list[np.ndarray]] = {rep.key: [] for rep in self.inputs}
        self._pending_level: list[np.ndarray] = []
        self._proba = np.zeros((0, len(sound.labels) if sound is not None else 0))
        self._X = np.zeros((0, len(sound.feature_names) if sound is not None else 0))  # smoothing's change rule reads them
        self._silent = np.zeros(0, bool)
        self._activity: np.ndarray | None = None  # Silero's peak per window, if the sound model takes it
        self._tail0 = 0        # window index of _proba[0]
        self.n_decided = 0
        self._predicted: list[np.ndarray] = []  # every window's probabilities, kept for the analysis

    def add(self, rows: dict, *, final: bool = False) -> np.ndarray:
        """Take more rows (``rows[key]`` with ``index``, ``X``, and ``level_db`` for the level key);
        return the decisions (bool) for the next windows, possibly none."""
        for key in self._pending:
            if key in rows:
                self._pending[key].append(rows[key].X)
        if self.level_key in rows:
            self._pending_level.append(rows[self.level_key].level_db)
        self._predict_ready()
        valid = ~self._silent
        upto = self._tail0 + (len(valid) if final else settled(valid, width=self.width, stops=self.stops))
        if upto <= self.n_decided:
            return np.zeros(0, bool)
        if self.sound is not None:
            proba = self.sound.smooth_windows(self._proba, self._X, silent=self._silent)
            likely = _likely(proba, self.sound.labels, self._silent, self._activity)
        else:
            likely = ~self._silent
        decided = likely[self.n_decided - self._tail0:upto - self._tail0]
        self.n_decided = upto
        # No later smoothing reaches them, nor compares them with the windows it does reach.
        # A straddler may take its previous valid neighbour's value: keep what that one's average needs.
        first = context_start(valid, self.n_decided - self._tail0, stops=self.stops)
        drop = context_start(valid, first - self.half, stops=self.stops)
        self._proba, self._X, self._silent = self._proba[drop:], self._X[drop:], self._silent[drop:]
        self._tail0 += drop
        if self._activity is not None:
            self._activity = self._activity[drop:]
        return decided

    def predicted(self) -> np.ndarray | None:
        """The sound model's unsmoothed probabilities (:meth:`ModelBundle.predict_windows`) of every
        window predicted so far, in window order, so the finished analysis need not predict them
        again; None without a sound model."""
        if self.sound is None:
            return None
        return np.vstack([self._proba[:0], *self._predicted])

    def _predict_ready(self) -> None:
        """Predict the windows every needed input now has."""
        level = np.concatenate(self._pending_level) if self._pending_level else np.zeros(0)
        cols = {key: np.vstack(parts) for key, parts in self._pending.items() if parts}
        if len(cols) < len(self._pending):
            return
        ready = min([len(level), *(len(c) for c in cols.values())])
        if ready == 0:
            return
        silent = level[:ready] < SILENCE_FLOOR_DB
        if self.sound is not None:
            X = np.hstack([rep.select(cols[rep.key][:ready]) for rep in self.inputs])
            proba = self.sound.predict_windows(X, silent=silent)
            activity = sound_activity(self.sound, {key: c[:ready] for key, c in cols.items()})
            if activity is not None:
                self._activity = activity if self._activity is None else np.concatenate([self._activity, activity])
        else:
            X = proba = np.zeros((ready, 0))
        self._proba = np.vstack([self._proba, proba])
        self._predicted.append(proba)
        self._X = np.vstack([self._X, X])
        self._silent = np.concatenate([self._silent, silent])
        self._pending = {key: [c[ready:]] for key, c in cols.items()}
        self._pending_level = [level[ready:]]
