"""The Python API: what the CLI does, for scripts and notebooks.

    >>> import dramapic_subs
    >>> result = dramapic_subs.analyze("drama.mp4")
    >>> result.summary.video_type, result.summary.shares["speech"]
    >>> result.windows[0]["sound_type"]
    >>> open("drama.srt", "w").write(result.to_srt())
    >>> result.segments["gender"][0]          # Segment(tier='gender', label='female', ...)
    >>> result.save("drama.TextGrid")         # or .csv, .labels.txt (Audacity), .rttm
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from . import captions, segments
from .models import ModelBundle
from .pipeline import analyze as _analyze
from .pipeline import load_models
from .result import Analysis
from .summary import Summary, summarize
from .windows import DEFAULT_HOP_S, DEFAULT_WINDOW_S


@dataclass(frozen=True)
class Result:
    """The analysis of one file, with its summary and caption texts.

    Attributes
    ----------
    analysis : Analysis
        Arrays: cue times, levels, silence flags, each model's probabilities.
    lang : str
        Label language of the caption texts (``en`` or ``ko``).
    """

    analysis: Analysis
    lang: str = "en"

    @cached_property
    def summary(self) -> Summary:
        return summarize(self.analysis)

    @property
    def windows(self) -> list[dict]:
        """One dict per cue: start, end, silence, level_db, text, and each model's probabilities."""
        return captions.to_dict(self.analysis, lang=self.lang)["windows"]

    def to_dict(self) -> dict:
        """Everything the JSON output holds."""
        return captions.to_dict(self.analysis, lang=self.lang)

    @cached_property
    def segments(self) -> dict[str, list[segments.Segment]]:
        """Windows merged into segments, per tier (``sound_type``, ``gender`` per speech turn)."""
        return segments.tiers(self.analysis)

    def to_srt(self) -> str:
        return self.render("srt")

    def to_vtt(self) -> str:
        return self.render("vtt")

    def save(self, path: str | os.PathLike, fmt: str | None = None) -> Path:
        """Write one format (``fmt``, or the one the file name ends with), atomically.

        ``x.srt``, ``x.vtt``, ``x.json``, ``x.csv``, ``x.labels.txt``
        (Audacity), ``x.TextGrid``, ``x.rttm``.
        """
        path = Path(path)
        fmt = fmt or captions.format_of(path)
        captions.parse_formats(fmt)  # raises ParameterError for unknown formats
        return captions.write(self.analysis, fmt, path, lang=self.lang)

    def render(self, fmt: str) -> str:
        """The text of one format (any of ``--format``'s) as a string."""
        captions.parse_formats(fmt)
        with tempfile.TemporaryDirectory() as tmp:
            out = captions.write(self.analysis, fmt, Path(tmp) / f"captions{captions.EXTENSIONS[fmt]}",
                                 lang=self.lang)
            return out.read_text(encoding="utf-8")


def analyze(path: str | os.PathLike, *, window_s: float = DEFAULT_WINDOW_S, hop_s: float = DEFAULT_HOP_S,
            lang: str = "en", models: list[ModelBundle] | None = None, models_dir: Path | None = None,
            ffmpeg: str | None = None) -> Result:
    """Analyse a media file's soundtrack.

    Parameters
    ----------
    path : path
        Video or audio file.
    window_s, hop_s : float
        Window and hop (caption) length in seconds.
    lang : {"en", "ko"}
        Language of the caption labels.
    models : list of ModelBundle, optional
        Pre-loaded bundles (load once with :func:`load_models` for many files).
    models_dir : path, optional
        Folder of bundles; default the shipped ones.
    ffmpeg : str, optional
        ffmpeg binary; default the imageio-ffmpeg one.

    Raises
    ------
    DramapicError
        Missing or unreadable media, no audio, bad parameters, altered models.
    """
    captions.check_lang(lang)
    bundles = models or load_models(models_dir)
    return Result(_analyze(path, models=bundles, window_s=window_s, hop_s=hop_s, ffmpeg=ffmpeg), lang=lang)


__all__ = ["Result", "analyze", "load_models"]
