"""Do the sung-voice features (``features.SONG_FEATURES``) help the sound model out of corpus?

Builds (or reads from the cache) the training pool's n_fft-1024 table with the fit's settings
(3000 speech-over-bed mixes, none under 6 dB over music, Silero VAD beside), then runs
leave-one-corpus-out for ``hgb`` on the columns the shipped model uses (``BASE_FEATURES`` + VAD)
and on those plus the song columns (all of them, and subsets), and writes the comparison:

    PYTHONPATH=. python tools/song_features_loco.py [--variants base,song] [--out reports/song_features.json]

The base variant's rows are bit for bit the shipped model's (the song columns are appended after
the older ones, which did not change), so its folds come from the cache the fit left.
Dev is never read.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from dramapic_subs.features import BASE_FEATURES, SONG_FEATURES, feature_names
from dramapic_subs.representations import silero_from_file
from dramapic_subs.train import fit as fitting
from dramapic_subs.train import loco
from dramapic_subs.train.cli import DEFAULT_CACHE, DEFAULT_DATA, GENDER_NFFT, MUSIC_FLOOR_DB, SOUND_NFFT, _tables
from dramapic_subs.train.tables import VAD, Table

SONG_CORPORA = ("jamendo", "gugak", "mir1k")
SPEECH_CORPORA = ("emotiontts", "fsdd", "librispeech", "ravdess")
OTHER = ("animal", "dcase2016", "us8k", "snap")
VARIANTS = {
    "base": BASE_FEATURES,
    "song": BASE_FEATURES + SONG_FEATURES,
    "song_no_vibrato": BASE_FEATURES + [f for f in SONG_FEATURES if not f.startswith("vibrato")],
    "song_pitch_only": BASE_FEATURES + ["f0_held_frac", "f0_held_run_s", "tuning_strength"],
    "song_runs_only": BASE_FEATURES + ["voiced_run_s", "voiced_long_frac", "voicing_changes_hz"],
}


def summarize(task, proba) -> dict:
    ok = loco.scored(task, proba)
    labels = np.unique(task.y)
    pooled = task.score(task.y[ok], labels[proba[ok].argmax(axis=1)])
    per = loco.per_corpus(task, proba)
    return {"macro_f1": pooled["macro_f1"], "speech_vs_rest": pooled["speech_vs_rest_bacc"],
            "music_song_called_speech": pooled["music_song_called_speech"], "recall": pooled["recall"],
            "called_speech": {c: per[c]["nonspeech_called_speech"] if c in per else None for c in SONG_CORPORA + OTHER},
            "speech_kept": {c: per[c]["speech_recall"] if c in per else None for c in SPEECH_CORPORA},
            "per_corpus": per}


def _num(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def table(results: dict) -> str:
    """The comparison as a markdown table (pooled, then per held-out corpus)."""
    head = ["variant", "macro F1", "speech vs rest", "music+song called speech", "song / music recall",
            *[f"{c} called speech" for c in SONG_CORPORA + OTHER], f"speech kept: {' / '.join(SPEECH_CORPORA)}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [name, f"{r['macro_f1']:.3f}", f"{r['speech_vs_rest']:.3f}", f"{r['music_song_called_speech']:.3f}",
                 f"{r['recall']['song']:.3f} / {r['recall']['music']:.3f}",
                 *[_num(r['called_speech'][c]) for c in SONG_CORPORA + OTHER],
                 " / ".join(_num(r['speech_kept'][c]) for c in SPEECH_CORPORA)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fold_log(task, est, cache_dir: Path):
    """A log that also prints each finished fold's share called speech (and of speech kept)."""
    labels = list(np.unique(task.y))
    fingerprint = loco._fingerprint(task, est)

    def log(message: str) -> None:
        print(message, flush=True)
        corpus = message.split("held out ")[-1].split(" ")[0] if "held out " in message else None
        path = cache_dir / f"loco-{task.name}-hgb-{corpus}-{fingerprint}.npy"
        if corpus and path.is_file():
            test = (task.groups == corpus) & ~loco.mix_rows(task)
            called = np.load(path).argmax(axis=1) == labels.index("speech")
            is_speech = task.y[test] == "speech"
            print(f"    {corpus}: non-speech called speech {called[~is_speech].mean() if (~is_speech).any() else float('nan'):.3f}, "
                  f"speech kept {called[is_speech].mean() if is_speech.any() else float('nan'):.3f}", flush=True)
    return log


def cached_tables(vad) -> dict:
    """The fit's plan cut to the jobs whose n_fft-1024 and VAD rows are cached: nothing is decoded."""
    from dramapic_subs.features import FeatureSpec
    from dramapic_subs.train.tables import _cache_key, build_tables, plan_jobs, read_manifest

    plan = plan_jobs(read_manifest(DEFAULT_DATA, "train"), augment_mixes=3000, music_floor_db=MUSIC_FLOOR_DB)
    have = [j for j in plan if all((DEFAULT_CACHE / f"{_cache_key(j, DEFAULT_DATA, r)}.npy").is_file()
                                   for r in (str(SOUND_NFFT), VAD))]
    print(f"cached: {len(have)} of {len(plan)} jobs ({sum(j.mix is not None for j in have)} mixes)", flush=True)
    return build_tables(have, data_dir=DEFAULT_DATA, specs=[FeatureSpec(SOUND_NFFT)], cache_dir=DEFAULT_CACHE,
                        n_jobs=1, vad=vad.weights)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="base,song")
    ap.add_argument("--out", type=Path, default=Path("reports") / "song_features.json")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cached-only", action="store_true",
                    help="Use only the jobs whose features are already cached (a smaller pool, the same for every "
                         "variant; none of its folds is the shipped model's)")
    ap.add_argument("--folds", default="", help="Only these held-out corpora (comma-separated); default: all")
    args = ap.parse_args()
    vad = silero_from_file(Path("models") / "silero_vad.npz")
    t0 = time.time()
    if args.cached_only:
        tables = cached_tables(vad)
    else:
        tables, _, _ = _tables(DEFAULT_DATA, "train", mixes=3000, jobs=args.jobs, cache=DEFAULT_CACHE, quiet=True,
                               music_floor_db=MUSIC_FLOOR_DB, n_ffts=(GENDER_NFFT, SOUND_NFFT), vad=vad)  # 512 too: one decode for both (evaluate needs it)
    print(f"tables: {len(tables[SOUND_NFFT])} rows in {time.time() - t0:.0f} s", flush=True)
    names = feature_names()
    only = tuple(args.folds.split(",")) if args.folds else None
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    est, cache = fitting.candidates()["hgb"], DEFAULT_CACHE / "loco"
    tasks = {}
    for variant in args.variants.split(","):
        idx = [names.index(n) for n in VARIANTS[variant]]
        spectral = tables[SOUND_NFFT]
        table = Table(np.hstack([spectral.X[:, idx], tables[VAD].X]), spectral.meta)
        tasks[variant] = loco.corpus_groups(fitting.sound_task(table))
    # Fold by fold, every variant in turn, the song and speech corpora first: on a busy machine the
    # comparison comes early. Each fold is cached, so the pooled pass below only reads them.
    order = [c for c in SONG_CORPORA + SPEECH_CORPORA if only is None or c in only]
    order += [c for c in (only or np.unique(tasks[next(iter(tasks))].groups)) if c not in order]
    for corpus in order:
        for variant, task in tasks.items():
            print(f"[{variant}]", end=" ", flush=True)
            loco.loco_proba(task, est, name="hgb", cache_dir=cache, log=fold_log(task, est, cache), only=(corpus,))
    for variant, task in tasks.items():
        proba = loco.loco_proba(task, est, name="hgb", cache_dir=cache, only=only)
        results[variant] = {"columns": VARIANTS[variant][len(BASE_FEATURES):], "pool": "cached jobs only"
                            if args.cached_only else "fit's", "folds": list(only) if only else "all",
                            **summarize(task, proba)}
        r = results[variant]
        print(f"{variant}: macro F1 {r['macro_f1']:.3f}, speech vs rest "
              f"{r['speech_vs_rest']:.3f}, song/music recall {r['recall']['song']:.3f}/{r['recall']['music']:.3f}, "
              f"called speech {r['called_speech']}, speech kept {r['speech_kept']}", flush=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
