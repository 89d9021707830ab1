"""Timeline plot: stacked sound-type probabilities and the voice over time, silence shaded.

The voice panel's bars are as opaque as a voice is likely (P(speech) +
P(song)), so the gender model's guesses over music or noise fade out.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .media import atomic_output
from .result import Analysis
from .voice import voice_probability
from .windows import runs

COLOURS = {"speech": "#4C78A8", "song": "#B279A2", "music": "#F58518", "noise": "#9D755D",
           "nature": "#54A24B"}
FEMALE_COLOUR, MALE_COLOUR = "#E45756", "#72B7B2"
WIDTH_IN, HEIGHT_IN, DPI = 14.0, 4.2, 100
AXES_LEFT, AXES_RIGHT = 0.06, 0.86  # fractions of the figure width; the review page maps clicks with them


@dataclass(frozen=True)
class TimelineGeometry:
    """Where time runs in the PNG, as fractions of its width (for click-to-seek)."""

    left: float
    right: float
    duration_s: float


def timeline_png(analysis: Analysis, path: Path) -> TimelineGeometry:
    """Draw the timeline of ``analysis`` into ``path`` (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and no GUI backend imported
    import matplotlib.pyplot as plt

    t = np.concatenate([analysis.start_s, analysis.end_s[-1:]])
    sound = analysis.model("sound_type")
    gender = analysis.model("gender")
    fig, (ax, gx) = plt.subplots(2, 1, figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, sharex=True,
                                 gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08})
    fig.subplots_adjust(left=AXES_LEFT, right=AXES_RIGHT, top=0.93, bottom=0.13)
    proba = np.nan_to_num(sound.proba, nan=0.0)
    ax.stackplot(t, *[_extend(proba[:, j]) for j in range(len(sound.labels))],
                 labels=sound.labels, colors=[COLOURS.get(lab, "grey") for lab in sound.labels], step="post")
    _voice_bars(gx, analysis, gender)
    for axis in (ax, gx):
        _shade_silence(axis, analysis)
        axis.set_xlim(0, analysis.duration_s)
        axis.set_ylim(0, 1)
    ax.set_ylabel("sound type")
    ax.set_title(analysis.source.name, loc="left", fontsize=11)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    gx.set_ylabel("voice")
    gx.set_yticks([0, 0.5, 1], ["male", "", "female"])
    gx.set_xlabel("time (s)")
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return TimelineGeometry(AXES_LEFT, AXES_RIGHT, float(analysis.duration_s))


def _voice_bars(gx, analysis: Analysis, gender) -> None:
    """P(female) as bars from the 0.5 line, each as opaque as a voice is likely in its window."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    female = gender.labels.index("female") if "female" in gender.labels else 0
    p_female = np.nan_to_num(gender.proba[:, female], nan=0.5)  # silent: a zero-height bar
    alpha = np.clip(np.nan_to_num(voice_probability(analysis), nan=0.0), 0.0, 1.0)
    colours = [(*to_rgba(FEMALE_COLOUR if p >= 0.5 else MALE_COLOUR)[:3], a) for p, a in zip(p_female, alpha)]
    gx.bar(analysis.start_s, p_female - 0.5, bottom=0.5, width=analysis.end_s - analysis.start_s, align="edge",
           color=colours, linewidth=0)
    gx.legend(handles=[Patch(color=FEMALE_COLOUR, label="female"), Patch(color=MALE_COLOUR, label="male"),
                       Patch(color=MALE_COLOUR, alpha=0.25, label="faint: no voice")],
              loc="upper left", bbox_to_anchor=(1.005, 1.25), frameon=False)


def _extend(x: np.ndarray) -> np.ndarray:
    """Per-window values onto the window edges (a step plot needs one more point)."""
    return np.append(x, x[-1:])


def _shade_silence(axis, analysis: Analysis) -> None:
    for n, (a, b) in enumerate(runs(analysis.silent)):
        axis.axvspan(analysis.start_s[a], analysis.end_s[b], color="#BBBBBB", alpha=0.8, lw=0,
                     label="silence" if n == 0 else None)
