"""How likely a voice is in each window: the one rule for "a voice is here".

The gender model's answer means nothing on music or noise. One rule decides
where a voice (speech or song) is likely enough, and serves everything that
needs it: the windows the speaker encoder embeds, the speech turns, and the
captions that show a gender. The timeline fades gender by the same
probability; the JSON keeps every probability regardless.
"""
from __future__ import annotations

import numpy as np

from .result import Analysis, ModelOutput

VOICE_LABELS = ("speech", "song")
# Chosen out of corpus, never on dev: by tools/voice_threshold.py on the 34,091
# original training windows, each predicted by the sound model fitted without
# its corpus (calibrated, smoothed as the product does). 0.40 has the lowest
# balanced error of 0.20-0.60 (5.75%): speech keeps its gender on 99.0% of
# windows, song on 73.8%; 96.3% of music, noise and nature windows lose it.
# Re-run that tool when the sound model is retrained.
VOICE_MIN = 0.4


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
    cols = [sound.labels.index(lab) for lab in VOICE_LABELS if lab in sound.labels]
    return sound.proba[:, cols].sum(axis=1)


def voice_likely(sound: ModelOutput, silent: np.ndarray) -> np.ndarray:
    """Non-silent windows where P(speech) + P(song) >= ``VOICE_MIN`` (bool, shape (n_windows,))."""
    return ~np.asarray(silent, bool) & (np.nan_to_num(sound_voice_probability(sound), nan=0.0) >= VOICE_MIN)


def voiced(analysis: Analysis) -> np.ndarray:
    """Windows where a voice is likely enough to show its gender (bool, shape (n_windows,))."""
    return voice_likely(analysis.model("sound_type"), analysis.silent)
