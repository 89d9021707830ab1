"""Caption text and the output writers, kept in a registry keyed by format.

One cue per hop; its text puts the likeliest labels first, e.g.
``speech 91% · music 6% | female 78%``. The gender column is shown only
where a voice is likely (:mod:`dramapic_subs.voice`). The segment exports of
:mod:`dramapic_subs.segments` share the registry.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from . import segments
from .errors import ParameterError
from .media import atomic_output
from .models import GENDER
from .result import Analysis, ModelOutput
from .summary import summarize
from .voice import voiced

LABELS = {
    "en": {"speech": "speech", "song": "song", "music": "music", "noise": "noise",
           "nature": "nature", "female": "female", "male": "male", "silence": "silence"},
    "ko": {"speech": "말소리", "song": "노래", "music": "음악", "noise": "소음",
           "nature": "자연음", "female": "여성", "male": "남성", "silence": "무음"},
}
SECOND_LABEL_MIN = 0.10  # a runner-up under 10% is noise on screen


def check_lang(lang: str) -> str:
    if lang not in LABELS:
        raise ParameterError(f"--lang must be one of {', '.join(LABELS)}, got {lang!r}")
    return lang


def cue_texts(analysis: Analysis, *, lang: str = "en") -> list[str]:
    """Caption text of every cue.

    The sound type's top two, then each other model's top label; the gender
    column only where a voice is likely enough (it means nothing on music).
    """
    names = LABELS[check_lang(lang)]
    voice = voiced(analysis)
    texts = []
    for i in range(len(analysis)):
        if analysis.silent[i]:
            texts.append(f"({names['silence']})")
            continue
        parts = [_model_text(m, shown_row(analysis, m, i), names, top=2 if j == 0 else 1)
                 for j, m in enumerate(analysis.models) if m.name != GENDER or voice[i]]
        texts.append(" | ".join(parts))
    return texts


def shown_row(analysis: Analysis, model: ModelOutput, i: int) -> np.ndarray:
    """The probabilities a caption shows for window ``i``: the gender of its speech turn, where it has one
    (a voice keeps its gender for the whole turn), else the window's own."""
    turn = analysis.turn_at(i) if model.name == GENDER else None
    return np.array([turn.gender[lab] for lab in model.labels]) if turn is not None else model.proba[i]


def _model_text(model: ModelOutput, row: np.ndarray, names: dict[str, str], *, top: int) -> str:
    order = np.argsort(row)[::-1][:top]
    shown = [k for n, k in enumerate(order) if n == 0 or row[k] >= SECOND_LABEL_MIN]
    return " · ".join(f"{names.get(model.labels[k], model.labels[k])} {_pct(row[k])}" for k in shown)


def _pct(p: float) -> str:
    return f"{int(round(100 * p))}%"


def _srt(analysis: Analysis, path: Path, lang: str) -> None:
    import pysrt

    subs = pysrt.SubRipFile()
    for i, text in enumerate(cue_texts(analysis, lang=lang)):
        start_ms, end_ms = _ms(analysis.start_s[i]), _ms(analysis.end_s[i])
        subs.append(pysrt.SubRipItem(index=i + 1, start=pysrt.SubRipTime(milliseconds=start_ms),
                                     end=pysrt.SubRipTime(milliseconds=end_ms), text=text))
    subs.save(str(path), encoding="utf-8")


def _vtt(analysis: Analysis, path: Path, lang: str) -> None:
    lines = ["WEBVTT", ""]
    for i, text in enumerate(cue_texts(analysis, lang=lang)):
        lines += [f"{_vtt_time(analysis.start_s[i])} --> {_vtt_time(analysis.end_s[i])}", text, ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _json(analysis: Analysis, path: Path, lang: str) -> None:
    path.write_text(json.dumps(to_dict(analysis, lang=lang), ensure_ascii=False, indent=1), encoding="utf-8")


def to_dict(analysis: Analysis, *, lang: str = "en") -> dict:
    """Everything in the analysis as JSON-ready Python objects."""
    texts = cue_texts(analysis, lang=lang)
    windows = []
    for i in range(len(analysis)):
        w = {"start": round(float(analysis.start_s[i]), 3), "end": round(float(analysis.end_s[i]), 3),
             "silence": bool(analysis.silent[i]), "level_db": round(float(analysis.level_db[i]), 1),
             "text": texts[i]}
        for m in analysis.models:
            row = m.row(i)
            w[m.name] = None if row is None else {k: round(v, 4) for k, v in row.items()}
        if analysis.activity is not None:  # Silero VAD's peak speech probability: a second opinion
            w["speech_activity"] = round(float(analysis.activity[i]), 4)
        windows.append(w)
    gender = next((m for m in analysis.models if m.name == GENDER), None)
    turns = [{"start": round(t.start_s, 3), "end": round(t.end_s, 3), "first_window": t.first,
              "last_window": t.last, "gender": {k: round(v, 4) for k, v in t.gender.items()}}
             for t in analysis.turns] if gender else []
    return {
        "source": str(analysis.source),
        "summary": summarize(analysis).to_dict(),
        "duration": round(analysis.duration_s, 3),
        "window": analysis.window_s,
        "hop": analysis.hop_s,
        "models": {m.name: {"version": m.version, "labels": m.labels, "n_fft": m.n_fft,
                            "hop": m.hop, "smooth": m.smooth} for m in analysis.models},
        "windows": windows,
        "turns": turns,
    }


def _ms(seconds: float) -> int:
    return int(round(float(seconds) * 1000))


def _vtt_time(seconds: float) -> str:
    ms = _ms(seconds)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


Writer = Callable[[Analysis, Path, str], None]
WRITERS: dict[str, Writer] = {"srt": _srt, "vtt": _vtt, "json": _json, **segments.WRITERS}
EXTENSIONS: dict[str, str] = {"srt": ".srt", "vtt": ".vtt", "json": ".json", **segments.EXTENSIONS}


def format_of(path: Path) -> str:
    """The format a file name asks for by its ending (``x.TextGrid`` -> ``textgrid``)."""
    name = path.name.lower()
    # Longest ending first: ``.labels.txt`` before any shorter match.
    for fmt, ext in sorted(EXTENSIONS.items(), key=lambda kv: -len(kv[1])):
        if name.endswith(ext.lower()):
            return fmt
    return path.suffix.lstrip(".").lower()


def parse_formats(spec: str) -> list[str]:
    """``"srt,vtt"`` -> ``["srt", "vtt"]``; srt is always written (it is the product)."""
    formats = [f.strip().lower() for f in spec.split(",") if f.strip()]
    unknown = [f for f in formats if f not in WRITERS]
    if unknown:
        raise ParameterError(f"unknown --format {', '.join(unknown)}; choose from {', '.join(WRITERS)}")
    return ["srt"] + [f for f in dict.fromkeys(formats) if f != "srt"]


def write(analysis: Analysis, fmt: str, path: Path, *, lang: str = "en") -> Path:
    """Write one format atomically (temp file, then rename)."""
    with atomic_output(path) as tmp:
        WRITERS[fmt](analysis, tmp, lang)
    return path
