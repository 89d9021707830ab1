"""Drama-like programmes built from dev clips, run through the whole CLI, scored cue by cue.

This scores the tool the way users meet it: hard cuts between scenes,
dialogue between two voices, speech laid over music and noise beds at
5-15 dB SNR, music and song interludes, ambience and silences, muxed into an
mp4 and captioned by ``dramapic-subs``. The truth of each cue is the
segment under its centre. A clip's own silent lead-in and tail (RAVDESS
starts and ends each line with about a second of room tone) are silence in
that truth, not the clip's label: a cue there hears only its neighbour.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..media import find_ffmpeg, read_audio
from ..models import GENDER, load_bundle, save_bundle
from . import augment
from .fit import candidates, corpus_of, gender_task, joined
from .loco import bed_corpora, corpus_groups, fit_without
from .report import gender_scores, sound_scores

SR = 16000
# Training corpora with female and male speakers: the programmes' dialogue needs both.
HELD_OUT_SPEECH = ("emotiontts", "librispeech", "ravdess")
# A clip sounds from its first to its last 50 ms frame within this many dB of its loudest one.
AUDIBLE_DB = 35.0
_FRAME = SR // 20


@dataclass(frozen=True)
class Segment:
    """A stretch of the programme with its true label (seconds)."""

    start: float
    end: float
    category: str        # a sound type, or "silence"
    gender: str = ""
    bed: str = ""        # speech laid over a bed: the bed's category (music, noise)


class _Builder:
    """Appends audio and its labels; clips come from the dev rows."""

    def __init__(self, rows: list[dict], data_dir: Path, rng: np.random.Generator) -> None:
        self.rng, self.data_dir = rng, data_dir
        self.by_cat = {c: [r for r in rows if r["category"] == c] for c in ("speech", "song", "music", "noise", "nature")}
        self.parts: list[np.ndarray] = []
        self.segments: list[Segment] = []
        self.t = 0.0

    def clip(self, category: str, seconds: float | None = None, **match: str) -> tuple[np.ndarray, dict]:
        pool = [r for r in self.by_cat[category] if all(r[k] == v for k, v in match.items())]
        row = pool[self.rng.integers(len(pool))]
        y = read_audio(self.data_dir / row["path"], sr=SR)
        if seconds is not None and len(y) > seconds * SR:
            start = self.rng.integers(0, len(y) - int(seconds * SR))
            y = y[start:start + int(seconds * SR)]
        return y, row

    def add(self, y: np.ndarray, category: str, gender: str = "", bed: str = "",
            heard: np.ndarray | None = None) -> None:
        """Append a clip; before and after it sounds, the timeline says silence.

        ``heard``: for speech laid over a bed, the voice alone: before and after it, the bed's category.
        """
        self.parts.append(np.asarray(y, np.float32))
        end = self.t + len(y) / SR
        if category == "silence":
            self.segments.append(Segment(self.t, end, "silence"))
        else:
            first, last = audible_extent(y if heard is None else heard)
            around = bed if heard is not None else "silence"
            for a, b, sounding in ((0.0, first, False), (first, last, True), (last, end - self.t, False)):
                if b > a:
                    self.segments.append(Segment(self.t + a, self.t + b, category, gender, bed) if sounding
                                         else Segment(self.t + a, self.t + b, around))
        self.t = end

    def silence(self, seconds: float) -> None:
        self.add(np.zeros(int(seconds * SR), np.float32), "silence")


def audible_extent(y: np.ndarray) -> tuple[float, float]:
    """Seconds from the start of ``y`` to where it starts and stops sounding (see ``AUDIBLE_DB``)."""
    n = len(y) // _FRAME
    if n == 0:
        return 0.0, len(y) / SR
    level = 10 * np.log10(np.mean(y[:n * _FRAME].reshape(n, _FRAME).astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level >= level.max() - AUDIBLE_DB)
    return loud[0] * _FRAME / SR, min(len(y), (loud[-1] + 1) * _FRAME) / SR


def build(rows: list[dict], data_dir: Path, *, seconds: float, seed: int) -> tuple[np.ndarray, list[Segment]]:
    """A programme of about ``seconds`` from random dev clips, and its timeline."""
    rng = np.random.default_rng(seed)
    b = _Builder(rows, data_dir, rng)
    while b.t < seconds:
        scene = rng.choice(["dialogue", "dialogue", "voice over bed", "music", "song", "ambience"])
        if scene == "dialogue":
            for turn in range(int(rng.integers(2, 5))):
                y, row = b.clip("speech", 8.0, gender="female" if turn % 2 else "male")
                b.add(0.3 * y / (np.abs(y).max() + 1e-9), "speech", row["gender"])
                b.silence(float(rng.uniform(0.2, 0.8)))
        elif scene == "voice over bed":
            y, row = b.clip("speech", 10.0)
            bed_category = str(rng.choice(["music", "noise"]))
            bed, _ = b.clip(bed_category)
            mixed = augment.mix_at_snr(y, bed, snr_db=float(rng.uniform(5, 15)))
            b.add(0.3 * mixed / (np.abs(mixed).max() + 1e-9), "speech", row["gender"], bed_category, heard=y)
        else:
            category = {"music": "music", "song": "song", "ambience": str(rng.choice(["noise", "nature"]))}[scene]
            y, _ = b.clip(category, float(rng.uniform(5, 12)))
            b.add(0.3 * y / (np.abs(y).max() + 1e-9), category)
        if rng.random() < 0.3:
            b.silence(float(rng.uniform(1.0, 3.0)))
    return np.concatenate(b.parts), b.segments


def truth(segments: list[Segment], times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Category and gender of the segment under each time."""
    idx = _under(segments, times)
    return (np.array([segments[i].category for i in idx]), np.array([segments[i].gender for i in idx]))


def _under(segments: list[Segment], times: np.ndarray) -> np.ndarray:
    """Index of the segment under each time."""
    starts = np.array([s.start for s in segments])
    return np.clip(np.searchsorted(starts, times, side="right") - 1, 0, len(segments) - 1)


def mux(y: np.ndarray, out: Path, ffmpeg: str) -> Path:
    """The programme's audio (AAC) under a small test picture, as an mp4."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "a.f32"
        wav.write_bytes(y.astype("<f4").tobytes())
        subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=gray:s=160x90:r=5:d={len(y) / SR:.3f}",
                        "-f", "f32le", "-ar", str(SR), "-ac", "1", "-i", str(wav), "-c:v", "libx264",
                        "-preset", "ultrafast", "-c:a", "aac", "-b:a", "96k", "-shortest", str(out)], check=True)
    return out


def shown_gender(doc: dict) -> list[str]:
    """The gender each cue shows: its speech turn's where it has one, else its window's likelier one."""
    out = [max(w["gender"], key=w["gender"].get) if w.get("gender") else "" for w in doc["windows"]]
    for t in doc.get("turns", []):
        said = max(t["gender"], key=t["gender"].get)
        out[t["first_window"]:t["last_window"] + 1] = [said] * (t["last_window"] - t["first_window"] + 1)
    return out


def score_programmes(rows: list[dict], data_dir: Path, *, count: int, seconds: float, models: Path, seed: int = 0,
                     log=print) -> dict:
    """Build ``count`` programmes, caption each with the CLI, and score all their cues together.

    ``models`` is the folder of the bundles under evaluation, handed to the CLI: its own default is
    the installed package's, which in an editable install is another checkout's.
    """
    ffmpeg = find_ffmpeg()
    cats, preds, genders, gpreds, over_bed = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="dramapic-programmes-") as tmp:
        for k in range(count):
            y, segments = build(rows, data_dir, seconds=seconds, seed=seed + k)
            video = mux(y, Path(tmp) / f"programme{k}.mp4", ffmpeg)
            subprocess.run([sys.executable, "-m", "dramapic_subs", str(video), "--format", "json", "-o", tmp,
                            "--models", str(Path(models).resolve()), "--quiet"], check=True)
            doc = json.loads((Path(tmp) / f"programme{k}.json").read_text(encoding="utf-8"))
            centres = np.array([(w["start"] + w["end"]) / 2 for w in doc["windows"]])
            cat, gender = truth(segments, centres)
            bed = [segments[i].bed for i in _under(segments, centres)]
            shown = shown_gender(doc)
            for w, c, g, said, b in zip(doc["windows"], cat, gender, shown, bed):
                if c == "silence":
                    continue
                sound = w["sound_type"]
                cats.append(c)
                preds.append("silence" if sound is None else max(sound, key=sound.get))
                if c == "speech" and g and said:
                    genders.append(g)
                    gpreds.append(said)
                    over_bed.append(bool(b))
            log(f"  programme {k}: {len(doc['windows'])} cues, {sum(s.category == 'speech' for s in segments)} speech segments")
    genders, gpreds, over_bed = np.array(genders), np.array(gpreds), np.array(over_bed, bool)
    return {"programmes": count, "seconds_each": seconds,
            "sound_type": sound_scores(np.array(cats), np.array(preds)),
            "gender": gender_scores(genders, gpreds),
            # Speech laid over music or noise, and the rest (dialogue): they fail differently.
            "gender_over_beds": gender_scores(genders[over_bed], gpreds[over_bed]),
            "gender_without_beds": gender_scores(genders[~over_bed], gpreds[~over_bed])}


def score_held_out_programmes(tables: dict, rows: list[dict], data_dir: Path, *, models: Path, count: int,
                              seconds: float, seed: int = 100, log=print) -> dict[str, dict]:
    """Programmes whose voices come from one training corpus, captioned with a gender model fitted
    without that corpus; scored as :func:`score_programmes`, per held-out corpus.

    Dev programmes reuse speakers of corpora the models trained on; these hold the speakers' corpus
    out, as leave-one-corpus-out does for single windows, but with dialogue, beds and cuts. The
    gender model is the shipped configuration (its card's chosen estimator, temperature, smoothing
    and turn settings) refitted without the corpus; the sound model is the shipped one, which did
    train on these clips, so only the gender figures are out of corpus.

    Parameters
    ----------
    tables : dict
        The training tables (with the gender bundle's inputs).
    rows : list of dict
        The training manifest rows.
    models : Path
        The shipped bundles; each fold's folder holds copies of them with its own gender bundle.
    """
    gender = load_bundle(GENDER, directory=models)
    task = corpus_groups(gender_task(joined(tables, gender.inputs), gender.inputs))
    chosen = gender.meta.get("selection", {}).get("chosen", "logreg_strong")
    beds = bed_corpora(task)
    out = {}
    for corpus in HELD_OUT_SPEECH:
        model = fit_without(task, candidates()[chosen], corpus, beds=beds)
        picked = [r for r in rows if r["category"] != "speech" or corpus_of(r["source"]) == corpus]
        with tempfile.TemporaryDirectory(prefix="dramapic-fold-") as tmp:
            for f in Path(models).iterdir():
                if f.is_file() and not f.name.startswith(f"{GENDER}."):
                    shutil.copy2(f, tmp)
            save_bundle(dataclasses.replace(gender, estimator=model), Path(tmp))
            log(f"  held-out programmes: {corpus}")
            out[corpus] = score_programmes(picked, data_dir, count=count, seconds=seconds, models=Path(tmp),
                                           seed=seed, log=log)
    return out
