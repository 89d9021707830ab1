"""Feature tables for training and evaluation, built in parallel and cached.

One decode per file and one STFT per spectral setting (n_fft and hop) per
file (the product's own streaming featurizer), files spread over joblib workers. Each file's windows
are cached on disk under a key made of the file's content hash and the
feature settings, so a re-run only computes what changed. Any joblib backend
works: ``with joblib.parallel_config(backend="dask"): build_tables(...)``
runs the same code on a Dask cluster.
"""
from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..features import SILENCE_FLOOR_DB, FeatureSpec, featurize, feature_names
from ..media import codec_roundtrip, find_ffmpeg, read_audio
from ..embedding import EMBED_DIM, EmbeddingStream, EmbeddingWindows, SpeakerEncoder
from ..vad import VAD_FEATURES, SileroWeights, vad_windows
from ..windows import make_grid
from . import augment

SR = 16000
# Bump when features.py changes what it computes. 6: the sung-voice columns (features.SONG_FEATURES).
# Not bumped for the hop setting: another hop than n_fft / 4 has its own key.
FEATURE_VERSION = "6"
VAD_VERSION = "1"            # bump when vad.py's pooled features change
VAD = "vad"                  # the tables' key for Silero VAD columns (the spectral ones: spectral_key)
SPEAKER = "spk"              # ... and for speaker embeddings, computed for speech only (zeros elsewhere)
SPEAKER_VERSION = "2"        # 2: speech mixed over beds is embedded too (version 1 cached zeros for it)
RELATIVE_FLOOR_DB = 30.0     # also drop windows this far below the file's loudest
# Singing that is laid over instrumental music for the song mixes: isolated voices and sung lines.
# (mir1k_mix already is MIR-1K's voices over their own accompaniment.)
SONG_SOURCES = ("mir1k_vocals", "jamendo_sung", "gugak_vocalset")
META_COLS = ("path", "source", "category", "speaker", "gender", "language", "aug", "bed", "job")


@dataclass(frozen=True)
class Job:
    """One item to featurize: a manifest file, or a mix of two."""

    row: dict
    mix: augment.MixSpec | augment.RhythmSpec | augment.VocalSpec | None = None
    gain_db: float = 0.0


@dataclass
class Table:
    """Windows of many files for one representation (an n_fft and hop, the VAD, the speaker embedding).

    Attributes
    ----------
    X : np.ndarray, shape (n, n_features)
    meta : dict of str -> np.ndarray of str, shape (n,)
        ``META_COLS`` of each window's file.
    """

    X: np.ndarray
    meta: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.X)

    def where(self, mask: np.ndarray) -> "Table":
        return Table(self.X[mask], {k: v[mask] for k, v in self.meta.items()})

    def save(self, path: Path) -> None:
        np.savez_compressed(path, X=self.X, **{f"meta_{k}": v for k, v in self.meta.items()})

    @staticmethod
    def load(path: Path) -> "Table":
        with np.load(path, allow_pickle=False) as z:
            return Table(z["X"], {k[5:]: z[k] for k in z.files if k.startswith("meta_")})


def spectral_key(spec: FeatureSpec) -> int | str:
    """Key of a spectral setting in the tables and (as text) in the cache: n_fft, or ``"n_fft/hop"``.

    At the default hop (n_fft / 4) the key is the bare n_fft, as before the
    hop was a setting, so every table and cache entry made then stays valid
    (their rows are the same, bit for bit); any other hop gets a key of its
    own, so rows at two hops are never mixed up.
    """
    return spec.n_fft if spec.hop == spec.n_fft // 4 else f"{spec.n_fft}/{spec.hop}"


def table_keys(specs: list[FeatureSpec], *, vad, encoder) -> list[int | str]:
    """The tables :func:`build_tables` makes, in order: each spec's, then the VAD's and the embeddings' if asked."""
    return [spectral_key(s) for s in specs] + ([VAD] if vad is not None else []) + ([SPEAKER] if encoder is not None else [])


def read_manifest(data_dir: Path, split: str) -> list[dict]:
    """Rows of ``manifest.csv`` for one split, with ``speaker`` made unique per source."""
    with open(data_dir / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    for r in rows:
        r["speaker"] = f"{r['source']}:{r['speaker']}"
    return rows


def plan_jobs(rows: list[dict], *, augment_mixes: int, song_mixes: int = 0, music_floor_db: float | None = None,
              rhythm_mixes: int = 0, vocal_mixes: int = 0, seed: int = 0) -> list[Job]:
    """Every file (with a random gain when augmenting), the speech-over-bed mixes, the song mixes, the
    rhythm mixes, then the non-verbal vocal sounds.

    Parameters
    ----------
    rows : list of dict
        Manifest rows (see :func:`read_manifest`).
    augment_mixes : int
        Speech over music, noise and nature beds, labelled speech. 0: no augmentation at all.
    song_mixes : int
        Singing (``SONG_SOURCES``) over instrumental music, labelled song, drawn (as the speech mixes
        are) from their own generator after the speech mixes, so adding them leaves every other job
        (and its cache) as it was. The band-limited draws (about half) are dropped: see below.
    music_floor_db : float or None
        Drop the speech mixes whose bed is music and whose SNR is below this (dB); the others are
        drawn as before. None: keep them all.
    rhythm_mixes : int
        Music, noise and nature clips chopped to a speech clip's syllable rhythm, labelled as the clip
        (:class:`~dramapic_subs.train.augment.RhythmSpec`), from a generator of their own, after the others.
    vocal_mixes : int
        Laughs, grunts, clicks, cries and sighs made from a speech clip's vowels, labelled noise
        (:class:`~dramapic_subs.train.augment.VocalSpec`), from a generator of their own, last.
    seed : int
        Seed of the gains and of both mix plans.
    """
    rng = np.random.default_rng(seed)
    jobs = [Job(r, gain_db=float(rng.uniform(*augment.GAIN_DB)) if augment_mixes else 0.0) for r in rows]
    by_path = {r["path"]: r for r in rows}
    if augment_mixes:
        speech = [r["path"] for r in rows if r["category"] == "speech"]
        beds = [r["path"] for r in rows if r["category"] in ("music", "noise", "nature")]
        for spec in augment.plan_mixes(speech, beds, n=augment_mixes, seed=seed + 1):
            # A voice barely above music, labelled speech, is what a sung line looks like. Out of
            # corpus, leaving out those under 6 dB took sung lines called speech from 0.39 to 0.26
            # (jamendo), 0.26 to 0.24 (gugak), 0.22 to 0.20 (mir1k); speech kept as before (fsdd -0.016).
            if music_floor_db is not None and by_path[spec.bed]["category"] == "music" and spec.snr_db < music_floor_db:
                continue
            jobs.append(Job(dict(by_path[spec.speech]), mix=spec))
    singing = [r["path"] for r in rows if r["source"] in SONG_SOURCES]
    music = [r["path"] for r in rows if r["category"] == "music"]
    if song_mixes and singing and music:
        # Without these, every voice-over-music example in the pool but MIR-1K's karaoke was
        # labelled speech (the speech mixes), and sung lines over other music were called speech.
        for spec in augment.plan_mixes(singing, music, n=song_mixes, seed=seed + 2, snr_db=augment.SONG_SNR_DB):
            # Band-limited singing taught the model that a band-limited voice may be song: held out,
            # FSDD's 8 kHz digits were kept as speech 0.65 of the time with them, 0.86 without.
            if not spec.band:
                jobs.append(Job(dict(by_path[spec.speech]), mix=spec))
    talkers = [r["path"] for r in rows if r["category"] == "speech"]
    # Crowd chatter loops hold voices: chopped to a talker's rhythm they would be speech in all but label.
    clips = [r["path"] for r in rows if r["category"] in ("music", "noise", "nature") and "babble" not in r["source"]]
    if rhythm_mixes and talkers and clips:
        for spec in augment.plan_rhythms(clips, talkers, n=rhythm_mixes, seed=seed + 3):
            jobs.append(Job(dict(by_path[spec.clip]), mix=spec))
    if vocal_mixes and talkers:
        for spec in augment.plan_vocals(talkers, n=vocal_mixes, seed=seed + 4):
            # The talker's row (its corpus, for leave-one-corpus-out), but not talking: noise, no gender.
            row = {**by_path[spec.clip], "category": "noise", "label": f"vocal: {spec.kind}", "gender": ""}
            jobs.append(Job(row, mix=spec))
    return jobs


def _file_hash(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _cache_key(job: Job, data_dir: Path, rep: str) -> str:
    version = {VAD: VAD_VERSION, SPEAKER: SPEAKER_VERSION}.get(rep, FEATURE_VERSION)
    parts = [version, rep, _file_hash(data_dir / job.row["path"]), f"gain={job.gain_db:.3f}"]
    if job.mix:
        parts += [_file_hash(data_dir / job.mix.bed), job.mix.key()]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def _load_signal(job: Job, data_dir: Path, ffmpeg: str) -> np.ndarray:
    y = read_audio(data_dir / job.row["path"], sr=SR, ffmpeg=ffmpeg)
    if job.mix is None:
        return augment.gain(y, job.gain_db) if job.gain_db else y
    m = job.mix
    rng = np.random.default_rng(m.seed)
    if isinstance(m, augment.VocalSpec):
        return _finish_chain(augment.vocalise(y, sr=SR, kind=m.kind, rng=rng), m, rng, ffmpeg)
    other = read_audio(data_dir / m.bed, sr=SR, ffmpeg=ffmpeg)
    if isinstance(m, augment.RhythmSpec):
        y = augment.impose_rhythm(y, other, sr=SR, floor=m.floor, offset=int(m.donor_offset_s * SR))
    else:
        y = augment.mix_at_snr(y, other, snr_db=m.snr_db, offset=int(m.bed_offset_s * SR))
    return _finish_chain(y, m, rng, ffmpeg)


def _finish_chain(y: np.ndarray, m, rng: np.random.Generator, ffmpeg: str) -> np.ndarray:
    """A mix's playback chain: band limit, gain, lossy codec."""
    y = augment.band_limit(y, sr=SR, kind=m.band, rng=rng)
    y = augment.gain(y, m.gain_db)
    if m.codec:
        codec, bitrate = m.codec.split(":")
        y = codec_roundtrip(y, sr=SR, codec=codec, bitrate=bitrate, ffmpeg=ffmpeg)
    return y


def featurize_job(job: Job, *, data_dir: Path, specs: list[FeatureSpec], cache_dir: Path | None,
                  ffmpeg: str, vad: SileroWeights | None = None,
                  encoder: SpeakerEncoder | None = None) -> list[np.ndarray]:
    """Feature rows of one job's non-silent windows: one array per spec, the VAD's if ``vad``, then
    the speaker embeddings if ``encoder`` (zeros where :func:`_embedded` says no).

    Each (file, representation) pair is cached on its own, so adding an
    n_fft, a hop or the VAD later computes only that one; the file is decoded
    once for all missing ones.
    """
    spectral = {str(spectral_key(s)): s for s in specs}
    reps = [str(k) for k in table_keys(specs, vad=vad, encoder=encoder)]
    paths = {r: cache_dir / f"{_cache_key(job, data_dir, r)}.npy" for r in reps} if cache_dir else {}
    out = {r: np.load(p) for r, p in paths.items() if p.is_file()}
    missing = [r for r in reps if r not in out]
    if missing == [SPEAKER] and not _embedded(job) and out:  # zeros: no need to decode
        out[SPEAKER] = np.zeros((len(next(iter(out.values()))), EMBED_DIM), np.float32)
        missing = []
    if missing:
        y = _load_signal(job, data_dir, ffmpeg)
        grid = make_grid(sr=SR)
        keep = audible_windows(y, grid)
        for rep in missing:
            if rep == VAD:
                # One fresh VAD state per clip, as the product has at the start of a file; deep into a
                # long file the product's state carries minutes of history (benchmarks/vad_restarts.py).
                out[rep] = vad_windows(y, weights=vad, grid=grid).X[keep]
            elif rep == SPEAKER and not _embedded(job):
                out[rep] = np.zeros((int(keep.sum()), EMBED_DIM), np.float32)
            elif rep == SPEAKER:
                stream = EmbeddingStream(encoder, grid)
                out[rep] = EmbeddingWindows.concat([stream.push(y), stream.finish()]).X[keep]
            else:
                out[rep] = featurize(y, spec=spectral[rep], grid=grid).X[keep]
            if rep in paths:
                save_array(paths[rep], out[rep])
    return [out[r] for r in reps]


def save_array(path: Path, array: np.ndarray) -> None:
    """Write a cache entry whole or not at all: to a temporary name in its folder, then renamed.

    Parallel workers and an interrupted run never leave (or read) half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _embedded(job: Job) -> bool:
    """Whether a job gets speaker embeddings: speech, recorded or mixed over a bed (the gender model
    trains on both; the song mixes and other sounds get zeros)."""
    return job.row["category"] == "speech"


def audible_windows(y: np.ndarray, grid) -> np.ndarray:
    """Windows loud enough to carry their file's label.

    Measured on the samples, not on any STFT, so every n_fft keeps the same
    windows and the tables' rows line up across n_fft.
    """
    n = len(y)
    level = np.array([10 * np.log10(np.mean(y[a:b] ** 2) + 1e-10)
                      for a, b in (grid.span(i, n) for i in range(grid.n_cues(n)))])
    return (level >= SILENCE_FLOOR_DB) & (level >= level.max(initial=-np.inf) - RELATIVE_FLOOR_DB)


def build_tables(jobs: list[Job], *, data_dir: Path, specs: list[FeatureSpec], cache_dir: Path | None,
                 n_jobs: int = -1, progress=None, vad: SileroWeights | None = None,
                 encoder: SpeakerEncoder | None = None) -> dict[int | str, Table]:
    """Featurize all jobs in parallel; return one :class:`Table` per spec (under :func:`spectral_key`), and
    under ``"vad"`` and ``"spk"`` the VAD's and the speaker embeddings'.

    Rows line up across the tables: the same windows of the same jobs.

    Parameters
    ----------
    progress : callable or None
        Called with the number of jobs finished so far.
    """
    from joblib import Parallel, delayed

    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    ffmpeg = find_ffmpeg()
    work = (delayed(featurize_job)(j, data_dir=data_dir, specs=specs, cache_dir=cache_dir, ffmpeg=ffmpeg, vad=vad,
                                    encoder=encoder)
            for j in jobs)
    results = []
    for done, res in enumerate(Parallel(n_jobs=n_jobs, return_as="generator", batch_size=8)(work), 1):
        results.append(res)
        if progress:
            progress(done)
    keys = table_keys(specs, vad=vad, encoder=encoder)
    counts = [len(r[0]) for r in results]
    meta = {c: np.repeat([_meta_value(j, c) for j in jobs], counts) for c in META_COLS if c != "job"}
    meta["job"] = np.repeat(np.arange(len(jobs)), counts).astype(str)  # windows of one clip, in order
    tables = {}
    for k, key in enumerate(keys):
        width = {VAD: len(VAD_FEATURES), SPEAKER: EMBED_DIM}.get(key, len(feature_names()))
        X = [r[k] for r in results]
        tables[key] = Table(np.vstack(X) if X else np.zeros((0, width), np.float32), meta)
    return tables


def _meta_value(job: Job, col: str) -> str:
    if col == "bed":  # the bed's source, so a held-out corpus can be kept out of the mixes too
        return Path(job.mix.bed).parts[1] if job.mix else ""
    if col == "aug":
        if job.mix is None:
            return "gain" if job.gain_db else ""
        # All start "mix": not scored.
        kind = {augment.RhythmSpec: "mix-rhythm", augment.VocalSpec: "mix-vocal"}.get(type(job.mix), "mix")
        return f"{kind}:{job.mix.band}:{job.mix.codec}"
    return job.row.get(col, "")
