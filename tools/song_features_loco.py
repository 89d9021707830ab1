"""Do statistics of sung voice help the sound model out of corpus? (They did not: reports/song_features.md.)

Sung voice holds notes, in long voiced (legato) stretches, often with vibrato, on a pitch grid;
speech glides and breaks into syllables about four times a second. ``song_stats`` measures that per
window from the per-frame voicing and F0 the product's featurizer already computes (no new analysis):
the share of voiced frame pairs whose F0 moves less than 0.3 semitone per 16 ms hop and the longest
such held note, the longest voiced run and the share of voiced frames in runs of 0.3 s or more,
voiced/unvoiced changes per second, the share of the F0 swing around its 0.2 s moving average that
lies at 4-7 Hz (vibrato) and its depth, and how closely F0 keeps to one semitone grid.

This script builds the training pool of ``dramapic-subs-train fit`` (3000 speech-over-bed mixes, none
under 6 dB over music), its n_fft-1024 table and Silero VAD columns from the tables' cache, and the
song columns of the same windows (decoded once, cached per job under ~/.cache/dramapic-subs/song-columns),
then runs leave-one-corpus-out for ``hgb`` (the shipped model's estimator) on the shipped model's
columns and on those plus the song columns, fold by fold, the song and speech corpora first:

    PYTHONPATH=. python tools/song_features_loco.py [--variants base,song] [--folds jamendo,gugak]

(``--table`` prints the table of an earlier run's JSON.) The base variant's rows are the shipped model's, so its folds come from the cache the fit left. The
results go to reports/song_features.json, the table to stdout. Dev is never read.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from dramapic_subs.features import _COL, _EPS, VOICED_MIN, FeatureSpec, StreamFeaturizer, WindowFeatures
from dramapic_subs.media import find_ffmpeg
from dramapic_subs.representations import silero_from_file
from dramapic_subs.train import fit as fitting
from dramapic_subs.train import loco
from dramapic_subs.train.cli import DEFAULT_CACHE, DEFAULT_DATA, MUSIC_FLOOR_DB, SOUND_NFFT, _tables
from dramapic_subs.train.tables import SR, VAD, Job, Table, _cache_key, _load_signal, audible_windows, plan_jobs, read_manifest, save_array
from dramapic_subs.windows import make_grid

SONG_CORPORA = ("jamendo", "gugak", "mir1k")
SPEECH_CORPORA = ("emotiontts", "fsdd", "librispeech", "ravdess")
OTHER = ("animal", "dcase2016", "us8k", "snap")
SONG_CACHE = DEFAULT_CACHE.parent / "song-columns"
SONG_VERSION = "1"  # bump when song_stats changes
SONG_FEATURES = ["f0_held_frac", "f0_held_run_s", "voiced_run_s", "voiced_long_frac", "voicing_changes_hz",
                 "vibrato_ratio", "vibrato_depth_st", "tuning_strength"]
HELD_SLOPE_ST_S = 18.75  # F0 moving less than this (semitones/s: 0.3 semitone per 16 ms hop) is a held note
LONG_VOICED_S = 0.3      # voiced runs at least this long count as legato
VIBRATO_HZ = (4.0, 7.0)  # F0 modulation band of vibrato, against 1-15 Hz
TREND_S = 0.2            # F0 minus its moving average over this span: the vibrato's swing ...
VIBRATO_RANGE_ST = 1.5   # ... in spans whose F0 stays within this range (semitones)


VARIANTS = {
    "base": [],
    "song": SONG_FEATURES,
    "song_no_vibrato": [f for f in SONG_FEATURES if not f.startswith("vibrato")],
    "song_pitch_only": ["f0_held_frac", "f0_held_run_s", "tuning_strength"],
    "song_runs_only": ["voiced_run_s", "voiced_long_frac", "voicing_changes_hz"],
}


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Runs of True in each row of a bool array: (row of each run, its length in elements)."""
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    ends = np.nonzero(edges == -1)[1]  # row-major order: the n-th end closes the n-th start
    return rows, ends - starts


def song_stats(voicing: np.ndarray, log2_f0: np.ndarray, frame_rate: float) -> np.ndarray:
    """Per window (rows): held-note share and longest held note, longest voiced run, share of voiced
    frames in long runs, voiced/unvoiced changes per second, vibrato band share and depth, and how
    closely F0 keeps to one tuning grid (see ``SONG_FEATURES``)."""
    n_win, n = voicing.shape
    out = np.zeros((n_win, len(SONG_FEATURES)), np.float64)
    if n < 2:
        return out
    voiced = voicing >= VOICED_MIN
    semis = log2_f0.astype(np.float64) * 12
    step = np.abs(np.diff(semis, axis=1))
    pairs = voiced[:, 1:] & voiced[:, :-1]
    held = pairs & (step < HELD_SLOPE_ST_S / frame_rate)
    n_pairs = pairs.sum(axis=1)
    out[:, 0] = held.sum(axis=1) / np.maximum(n_pairs, 1)
    rows, length = _runs(held)  # a run of k held pairs spans k + 1 frames
    np.maximum.at(out[:, 1], rows, (length + 1) / frame_rate)
    rows, length = _runs(voiced)
    np.maximum.at(out[:, 2], rows, length / frame_rate)
    np.add.at(out[:, 3], rows, np.where(length >= LONG_VOICED_S * frame_rate, length, 0))
    out[:, 3] /= np.maximum(voiced.sum(axis=1), 1)
    out[:, 4] = np.abs(np.diff(voiced.astype(np.int8), axis=1)).sum(axis=1) * frame_rate / n

    # Vibrato: F0 minus its centred moving average, where the whole span is voiced and on one note.
    span = max(3, int(round(TREND_S * frame_rate)) | 1)
    if n >= span + 8:
        f0 = np.where(voiced, semis, 0.0)
        csum = np.cumsum(np.pad(f0, ((0, 0), (1, 0))), axis=1)
        trend = (csum[:, span:] - csum[:, :-span]) / span  # (W, n - span + 1): span starting at each frame
        cvoiced = np.cumsum(np.pad(voiced.astype(np.int32), ((0, 0), (1, 0))), axis=1)
        full = (cvoiced[:, span:] - cvoiced[:, :-span]) == span
        # A span covering more than 1.5 semitones (a change of note, an octave error) is no vibrato.
        spans = np.lib.stride_tricks.sliding_window_view(semis, span, axis=1)
        full &= spans.max(axis=2) - spans.min(axis=2) <= VIBRATO_RANGE_ST
        half = span // 2
        dev = np.where(full, semis[:, half:half + trend.shape[1]] - trend, 0.0)
        m = dev.shape[1]
        spec = np.abs(np.fft.rfft(dev * np.hanning(m), axis=1)) ** 2
        freqs = np.fft.rfftfreq(m, 1.0 / frame_rate)
        total = spec[:, (freqs >= 1) & (freqs <= 15)].sum(axis=1)
        band = spec[:, (freqs >= VIBRATO_HZ[0]) & (freqs <= VIBRATO_HZ[1])].sum(axis=1)
        k = full.sum(axis=1)
        ok = k >= 8
        out[ok, 5] = band[ok] / (total[ok] + _EPS)
        out[ok, 6] = np.sqrt((dev[ok] ** 2).sum(axis=1) / k[ok])

    # Tuning: the fraction of a semitone of every voiced F0, as a phase; notes on one grid agree.
    count = voiced.sum(axis=1)
    phase = np.exp(2j * np.pi * semis)
    resultant = np.abs(np.where(voiced, phase, 0).sum(axis=1)) / np.maximum(count, 1)
    out[:, 7] = np.where(count >= 3, resultant, 0.0)
    return out




class SongStats(StreamFeaturizer):
    """The product's streaming featurizer, pooling ``song_stats`` of each window's frames instead of its features."""

    def _pool(self, spans: list[tuple[int, int, int]]) -> WindowFeatures:
        X = np.zeros((len(spans), len(SONG_FEATURES)), np.float32)
        if spans:
            frame_rate = self.spec.sr / self.spec.hop
            first = np.array([s[1] for s in spans])
            length = np.array([s[2] - s[1] for s in spans])
            for n_frames in np.unique(length):
                rows = np.flatnonzero(length == n_frames)
                batch = self._frames[first[rows, None] + np.arange(n_frames)[None, :]]
                X[rows] = song_stats(batch[:, :, _COL["voicing"]], batch[:, :, _COL["log2_f0"]], frame_rate)
        return WindowFeatures(np.array([s[0] for s in spans], int), X, np.zeros(len(spans), np.float32))


def song_columns(job: Job, *, ffmpeg: str, cache: Path | None = SONG_CACHE) -> np.ndarray:
    """The song columns of a job's audible windows (the rows of its tables), cached per job."""
    key = hashlib.sha1(f"song-{SONG_VERSION}|{_cache_key(job, DEFAULT_DATA, str(SOUND_NFFT))}".encode()).hexdigest()
    path = cache / f"{key}.npy" if cache else None
    if path is not None and path.is_file():
        return np.load(path)
    y = _load_signal(job, DEFAULT_DATA, ffmpeg)
    grid = make_grid(sr=SR)
    fz = SongStats(FeatureSpec(SOUND_NFFT), grid)
    X = WindowFeatures.concat([fz.push(y), fz.finish()]).X[audible_windows(y, grid)]
    if path is not None:
        save_array(path, X)
    return X


def song_table(jobs: list[Job], n_jobs: int) -> np.ndarray:
    from joblib import Parallel, delayed

    ffmpeg = find_ffmpeg()
    parts = Parallel(n_jobs=n_jobs, batch_size=8)(delayed(song_columns)(j, ffmpeg=ffmpeg) for j in jobs)
    return np.vstack(parts)


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="base,song")
    ap.add_argument("--out", type=Path, default=Path("reports") / "song_features.json")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--folds", default="", help="Only these held-out corpora (comma-separated); default: all")
    ap.add_argument("--table", action="store_true", help="Only print the table of --out's results")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(args.out.read_text())))
        return
    vad = silero_from_file(Path("models") / "silero_vad.npz")
    tables, _, rows = _tables(DEFAULT_DATA, "train", mixes=3000, jobs=args.jobs, cache=DEFAULT_CACHE, quiet=True,
                              music_floor_db=MUSIC_FLOOR_DB, specs=(FeatureSpec(SOUND_NFFT),), vad=vad)
    plan = plan_jobs(read_manifest(DEFAULT_DATA, "train"), augment_mixes=3000, music_floor_db=MUSIC_FLOOR_DB)
    song = song_table(plan, args.jobs)
    spectral = tables[SOUND_NFFT]
    assert len(song) == len(spectral), (len(song), len(spectral))
    print(f"tables: {len(spectral)} rows", flush=True)
    only = tuple(args.folds.split(",")) if args.folds else None
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    est, cache = fitting.candidates()["hgb"], DEFAULT_CACHE / "loco"
    tasks = {}
    for variant in args.variants.split(","):
        idx = [SONG_FEATURES.index(n) for n in VARIANTS[variant]]
        rows_ = Table(np.hstack([spectral.X, song[:, idx], tables[VAD].X]), spectral.meta)
        tasks[variant] = loco.corpus_groups(fitting.sound_task(rows_))
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
        results[variant] = {"columns": VARIANTS[variant], "folds": list(only) if only else "all",
                            **summarize(task, proba)}
        r = results[variant]
        print(f"{variant}: macro F1 {r['macro_f1']:.3f}, speech vs rest "
              f"{r['speech_vs_rest']:.3f}, song/music recall {r['recall']['song']:.3f}/{r['recall']['music']:.3f}, "
              f"called speech {r['called_speech']}, speech kept {r['speech_kept']}", flush=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
