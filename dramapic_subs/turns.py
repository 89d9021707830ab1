"""Speech turns: where a voice holds the floor, and whose voice it likely is.

A stand-in for real speaker-turn detection. The segment exports only call
:func:`speech_turns` and read :class:`Turn`, so a detector that splits turns
at speaker changes can replace this module without touching them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .result import Analysis
from .voice import VOICE_LABELS
from .windows import runs


@dataclass(frozen=True)
class Turn:
    """One stretch of voice, with its gender.

    Attributes
    ----------
    start_s, end_s : float
        Seconds from the start of the file.
    gender : dict of str -> float
        Mean probability (0-1) of each gender label over the turn's windows.
    """

    start_s: float
    end_s: float
    gender: dict[str, float]

    @property
    def label(self) -> str:
        """The likelier gender."""
        return max(self.gender, key=self.gender.get)

    @property
    def probability(self) -> float:
        """Mean probability (0-1) of :attr:`label`."""
        return self.gender[self.label]


def speech_turns(analysis: Analysis) -> list[Turn]:
    """Maximal runs of non-silent windows whose likeliest sound type is speech or song.

    Parameters
    ----------
    analysis : Analysis
        Needs the ``sound_type`` and ``gender`` models.

    Returns
    -------
    list of Turn
        In time order; the gender is the mean of the windows' gender
        probabilities over the run. A change of speaker inside a run is not
        detected (that is the real detector's job).
    """
    sound, gender = analysis.model("sound_type"), analysis.model("gender")
    voice_cols = [sound.labels.index(lab) for lab in VOICE_LABELS if lab in sound.labels]
    turns = []
    for a, b in runs(np.isin(analysis.top("sound_type"), voice_cols)):
        mean = gender.proba[a:b + 1].mean(axis=0)
        turns.append(Turn(float(analysis.start_s[a]), float(analysis.end_s[b]),
                          {lab: float(p) for lab, p in zip(gender.labels, mean)}))
    return turns
