"""How the voice threshold (``dramapic_subs.voice.VOICE_MIN``) was chosen.

For every audible dev window, the shipped sound-type model's P(speech) +
P(song), smoothed within each clip as the product smooths it. For each
candidate threshold, print how many speech (and song) windows keep their
gender column and how many music / noise / nature windows lose it.

    python tools/voice_threshold.py [--data ../shared/data] [--jobs 1]

Features come from the training tools' cache (``~/.cache/dramapic-subs``), so
a second run takes seconds.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dramapic_subs.features import FeatureSpec
from dramapic_subs.models import SOUND_TYPE, load_bundle, smooth_probabilities
from dramapic_subs.train.cli import DEFAULT_CACHE
from dramapic_subs.train.tables import build_tables, plan_jobs, read_manifest
from dramapic_subs.voice import VOICE_LABELS

CANDIDATES = (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)


def voice_by_window(data: Path, *, jobs: int) -> tuple[np.ndarray, np.ndarray]:
    """P(voice) and the true category of every audible dev window."""
    model = load_bundle(SOUND_TYPE)
    table = build_tables(plan_jobs(read_manifest(data, "dev"), augment_mixes=0), data_dir=data,
                         specs=[FeatureSpec(model.spec.n_fft)], cache_dir=DEFAULT_CACHE,
                         n_jobs=jobs)[model.spec.n_fft]
    proba = model.predict_proba(table.X)
    clip = table.meta["job"]
    for j in np.unique(clip):  # smooth within a clip, never across two
        rows = clip == j
        proba[rows] = smooth_probabilities(proba[rows], width=model.smooth, valid=np.ones(rows.sum(), bool))
    cols = [model.labels.index(lab) for lab in VOICE_LABELS]
    return proba[:, cols].sum(axis=1), table.meta["category"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    p_voice, category = voice_by_window(args.data, jobs=args.jobs)
    counts = {c: int((category == c).sum()) for c in ("speech", "song", "music", "noise", "nature")}
    print("windows:", counts)
    print("threshold | speech keeps gender | song keeps | music loses | noise loses | nature loses | "
          "balanced error")
    voice = np.isin(category, VOICE_LABELS)
    for t in CANDIDATES:
        keep = p_voice >= t
        cells = [f"{100 * keep[category == c].mean():5.1f}%" for c in ("speech", "song")]
        cells += [f"{100 * (~keep[category == c]).mean():5.1f}%" for c in ("music", "noise", "nature")]
        # Mean of the two mistakes: a voice window losing its gender, any other window keeping one.
        cells.append(f"{50 * ((~keep[voice]).mean() + keep[~voice].mean()):4.2f}%")
        print(f"{t:9.2f} | " + " | ".join(cells))


if __name__ == "__main__":
    main()
