"""How the voice threshold (``dramapic_subs.voice.VOICE_MIN``) was chosen.

For every original window of the training pool, the shipped sound-type
configuration's out-of-corpus P(speech) + P(song): each corpus predicted by a
model fitted without it (``dramapic_subs.train.loco``, the fold predictions
``dramapic-subs-train fit`` cached), calibrated with the bundle's temperature
and smoothed within each clip as the product smooths. For each candidate
threshold, print how many speech (and song) windows keep their gender column
and how many music / noise / nature windows lose it. Then, at ``VOICE_MIN``,
the same for each candidate ``ACTIVITY_MIN`` (Silero's peak speech probability
a window needs besides), out of corpus and in corpus (``GroupKFold`` over
speakers and files, the folds the calibration uses). Dev is not used: it is
for evaluation only.

    python tools/voice_threshold.py [--data ../shared/data]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dramapic_subs.models import SOUND_TYPE, calibrate, load_bundle
from dramapic_subs.train import fit as fitting
from dramapic_subs.train import loco
from dramapic_subs.train.cli import DEFAULT_CACHE, _fit_mixes, _spectral_specs, _tables
from dramapic_subs.vad import PEAK
from dramapic_subs.voice import VOICE_LABELS, VOICE_MIN

CANDIDATES = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
ACTIVITY_CANDIDATES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)
CATEGORIES = ("speech", "song", "music", "noise", "nature")


def voice_by_window(data: Path, *, mixes: int = 3000) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per view (``out of corpus``, ``in corpus``): P(voice), Silero's peak and the true category of
    every original training window."""
    model = load_bundle(SOUND_TYPE)
    vad = next(r for r in model.inputs if r.card()["kind"] == "silero_vad")
    # The rows fit saw (song mixes included), or the cached fold predictions are not the shipped model's.
    tables, _, _ = _tables(data, "train", mixes=mixes, jobs=2, cache=DEFAULT_CACHE, quiet=True, vad=vad,
                           **_fit_mixes(model.meta), specs=_spectral_specs(model.inputs))
    task = loco.corpus_groups(fitting.sound_task(fitting.joined(tables, model.inputs), model.inputs))
    name = model.meta["selection"]["chosen"]
    est = fitting.candidates()[name]
    peak = task.table.X[:, model.feature_names.index(PEAK)]
    views = {"out of corpus": loco.loco_proba(task, est, name=name, cache_dir=DEFAULT_CACHE / "loco"),
             "in corpus": loco.in_corpus_proba(task, est, name=name, cache_dir=DEFAULT_CACHE / "loco")}
    return {view: _voice(task, raw, model, peak) for view, raw in views.items()}


def _voice(task, raw: np.ndarray, model, peak: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ok = loco.scored(task, raw)
    labels = list(np.unique(task.y))
    proba = calibrate(raw[ok], temperature=model.temperature)
    clip, X = task.table.meta["job"][ok], task.table.X[ok]
    for j in np.unique(clip):  # smooth within a clip, never across two
        rows = clip == j
        proba[rows] = model.smooth_windows(proba[rows], X[rows], silent=np.zeros(rows.sum(), bool))
    cols = [labels.index(lab) for lab in VOICE_LABELS]
    return proba[:, cols].sum(axis=1), peak[ok], task.y[ok]


def _row(first: str, keep: np.ndarray, category: np.ndarray) -> str:
    cells = [f"{100 * keep[category == c].mean():.1f}%" for c in ("speech", "song")]
    cells += [f"{100 * (~keep[category == c]).mean():.1f}%" for c in ("music", "noise", "nature")]
    # Mean of the two mistakes: a voice window losing its gender, any other window keeping one.
    voice = np.isin(category, VOICE_LABELS)
    cells.append(f"{50 * ((~keep[voice]).mean() + keep[~voice].mean()):.2f}%")
    return f"| {first} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    views = voice_by_window(args.data)
    p_voice, _, category = views["out of corpus"]
    print("windows:", {c: int((category == c).sum()) for c in CATEGORIES})
    head = " | speech keeps | song keeps | music loses | noise loses | nature loses | balanced error |"
    print("| P(voice) >=" + head)
    print("|---|---|---|---|---|---|---|")
    for t in CANDIDATES:
        print(_row(f"{t:.2f}", p_voice >= t, category))
    print(f"\nAt P(voice) >= {VOICE_MIN}, and Silero's peak >= ACTIVITY_MIN:")
    print("| view | ACTIVITY_MIN" + head)
    print("|---|---|---|---|---|---|---|---|")
    for view, (p_voice, peak, category) in views.items():
        for t in ACTIVITY_CANDIDATES:
            print(_row(f"{view} | {t:.2f}", (p_voice >= VOICE_MIN) & (peak >= t), category))


if __name__ == "__main__":
    main()
