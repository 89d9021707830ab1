"""Segment exports: windows merged into labelled segments, for the tools reviewers use.

Two tiers: ``sound_type`` (runs of windows with the same likeliest sound type,
silence included) and ``gender`` (one segment per speech turn, from
:func:`dramapic_subs.turns.speech_turns`). Each segment carries the mean
probability of its label over its windows.

Formats, each registered in :data:`dramapic_subs.captions.WRITERS`:

* ``csv``: ``tier,label,start,end,probability`` (seconds; probability 0-1,
  empty for silence), read by any spreadsheet;
* ``audacity``: an Audacity label track (``start<TAB>end<TAB>label``), both
  tiers in one track since a label file holds one;
* ``textgrid``: a Praat TextGrid (long text format), one interval tier per
  tier, read by Praat and ELAN;
* ``rttm``: NIST RTTM ``SPEAKER`` lines, one per speech turn, the speaker
  named by its likelier gender (what pyannote reads and writes).

Labels are the models' own (English) whatever ``--lang`` is: these files are
for tools and scripts.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .result import Analysis
from .turns import speech_turns
from .windows import runs

SILENCE = "silence"


@dataclass(frozen=True)
class Segment:
    """A labelled stretch of one tier.

    Attributes
    ----------
    tier : str
        ``sound_type`` or ``gender``.
    label : str
    start_s, end_s : float
        Seconds from the start of the file.
    probability : float or None
        Mean probability (0-1) of ``label`` over the segment; None for silence.
    """

    tier: str
    label: str
    start_s: float
    end_s: float
    probability: float | None

    def text(self) -> str:
        """``speech 91%``, or the bare label where there is no probability."""
        return self.label if self.probability is None else f"{self.label} {round(100 * self.probability)}%"


def sound_segments(analysis: Analysis) -> list[Segment]:
    """Runs of windows with the same likeliest sound type (or silence), in time order."""
    sound = analysis.model("sound_type")
    top = analysis.top("sound_type")
    out = []
    for k in np.unique(top):
        for a, b in runs(top == k):
            label = SILENCE if k < 0 else sound.labels[k]
            p = None if k < 0 else float(sound.proba[a:b + 1, k].mean())
            out.append(Segment("sound_type", label, float(analysis.start_s[a]), float(analysis.end_s[b]), p))
    return sorted(out, key=lambda s: s.start_s)


def gender_segments(analysis: Analysis) -> list[Segment]:
    """One segment per speech turn, labelled with its likelier gender."""
    return [Segment("gender", t.label, t.start_s, t.end_s, t.probability) for t in speech_turns(analysis)]


def tiers(analysis: Analysis) -> dict[str, list[Segment]]:
    """Every tier's segments, keyed by tier name."""
    return {"sound_type": sound_segments(analysis), "gender": gender_segments(analysis)}


def _csv(analysis: Analysis, path: Path, lang: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["tier", "label", "start", "end", "probability"])
        for segs in tiers(analysis).values():
            out.writerows([s.tier, s.label, f"{s.start_s:.3f}", f"{s.end_s:.3f}",
                           "" if s.probability is None else f"{s.probability:.4f}"] for s in segs)


def _audacity(analysis: Analysis, path: Path, lang: str) -> None:
    segs = sorted((s for t in tiers(analysis).values() for s in t), key=lambda s: (s.start_s, s.tier != "sound_type"))
    path.write_text("".join(f"{s.start_s:.6f}\t{s.end_s:.6f}\t{s.text()}\n" for s in segs), encoding="utf-8")


def _textgrid(analysis: Analysis, path: Path, lang: str) -> None:
    end = float(analysis.duration_s)
    items = [_interval_tier(n, name, _tiled(segs, end)) for n, (name, segs) in enumerate(tiers(analysis).items(), 1)]
    head = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", f"xmax = {_num(end)}",
            "tiers? <exists>", f"size = {len(items)}", "item []:"]
    path.write_text("\n".join(head + items) + "\n", encoding="utf-8")


def _tiled(segs: list[Segment], end: float) -> list[tuple[float, float, str]]:
    """Intervals covering ``[0, end]`` without gaps, as an IntervalTier must: gaps get empty text."""
    out, t = [], 0.0
    for s in segs:
        if s.start_s > t:
            out.append((t, s.start_s, ""))
        out.append((s.start_s, s.end_s, s.text()))
        t = s.end_s
    if end > t:
        out.append((t, end, ""))
    return out


def _interval_tier(n: int, name: str, intervals: list[tuple[float, float, str]]) -> str:
    lines = [f"    item [{n}]:", '        class = "IntervalTier"', f'        name = "{name}"', "        xmin = 0",
             f"        xmax = {_num(intervals[-1][1]) if intervals else 0}",
             f"        intervals: size = {len(intervals)}"]
    for k, (a, b, text) in enumerate(intervals, 1):
        quoted = text.replace('"', '""')  # Praat's only escape inside a string
        lines += [f"        intervals [{k}]:", f"            xmin = {_num(a)}", f"            xmax = {_num(b)}",
                  f'            text = "{quoted}"']
    return "\n".join(lines)


def _num(seconds: float) -> str:
    """Seconds to the microsecond without trailing zeros, as Praat writes them."""
    return f"{seconds:.6f}".rstrip("0").rstrip(".")


def _rttm(analysis: Analysis, path: Path, lang: str) -> None:
    uri = rttm_uri(analysis.source)
    lines = [f"SPEAKER {uri} 1 {s.start_s:.3f} {s.end_s - s.start_s:.3f} <NA> <NA> {s.label} {s.probability:.3f} <NA>\n"
             for s in gender_segments(analysis)]
    path.write_text("".join(lines), encoding="utf-8")


def rttm_uri(source: Path) -> str:
    """The file field of RTTM: the input's stem, whitespace replaced (fields are space-separated)."""
    return re.sub(r"\s+", "_", source.stem) or "_"


WRITERS = {"csv": _csv, "audacity": _audacity, "textgrid": _textgrid, "rttm": _rttm}
# File name endings; Audacity imports labels from .txt, Praat and ELAN look for .TextGrid.
EXTENSIONS = {"csv": ".csv", "audacity": ".labels.txt", "textgrid": ".TextGrid", "rttm": ".rttm"}
