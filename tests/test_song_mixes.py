"""Song augmentation: singing over instrumental music, labelled song, kept out of the folds it would leak into."""
from __future__ import annotations

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from dramapic_subs.train import augment, fit, loco
from dramapic_subs.train.tables import META_COLS, SONG_SOURCES, Table, _meta_value, plan_jobs, read_manifest


def _song_jobs(jobs):
    return [j for j in jobs if j.mix is not None and j.row["category"] == "song"]


def test_song_mixes_lay_singing_over_music_and_leave_the_other_jobs_alone(data_dir):
    rows = read_manifest(data_dir, "train")
    category = {r["path"]: r["category"] for r in rows}
    without = plan_jobs(rows, augment_mixes=40)
    with_songs = plan_jobs(rows, augment_mixes=40, song_mixes=30)
    # Appended after the speech mixes, from their own generator: every cached job keeps its key.
    assert with_songs[:len(without)] == without
    songs = with_songs[len(without):]
    assert 5 < len(songs) < 30 and songs == _song_jobs(with_songs)  # the band-limited draws are dropped
    assert {j.mix.band for j in songs} == {""} and {j.mix.codec for j in songs} > {""}
    assert {j.row["source"] for j in songs} <= set(SONG_SOURCES)
    assert len({j.row["source"] for j in songs}) >= 2  # not all from one corpus
    assert {category[j.mix.bed] for j in songs} == {"music"}
    lo, hi = augment.SONG_SNR_DB
    assert all(lo <= j.mix.snr_db <= hi for j in songs)
    assert min(j.mix.snr_db for j in songs) < augment.SNR_DB[0]  # lower than any speech mix may go
    assert plan_jobs(rows, augment_mixes=40, song_mixes=30) == with_songs  # seeded
    assert _song_jobs(plan_jobs(rows, augment_mixes=0, song_mixes=0)) == []


def test_a_held_out_corpus_leaves_its_song_mixes_out_of_training(data_dir, monkeypatch):
    rows = read_manifest(data_dir, "train")
    jobs = plan_jobs(rows, augment_mixes=0, song_mixes=120)
    meta = {c: np.array([_meta_value(j, c) for j in jobs]) for c in META_COLS if c != "job"}
    meta["job"] = np.arange(len(jobs)).astype(str)
    X = np.arange(len(jobs), dtype=float)[:, None]  # column 0: the job's index, to see who trained
    task = fit.sound_task(Table(X, meta))
    seen: dict[str, set[int]] = {}
    real_fit = loco.fit_weighted

    def recording_fit(est, X, y, w):
        held_out = next(c for c in np.unique(task_groups) if c not in set(task_groups[X[:, 0].astype(int)]))
        seen[held_out] = set(X[:, 0].astype(int).tolist())
        return real_fit(est, X, y, w)

    task_groups = loco.corpus_groups(task).groups
    monkeypatch.setattr(loco, "fit_weighted", recording_fit)
    est = Pipeline([("clf", DummyClassifier(strategy="prior"))])
    proba = loco.loco_proba(loco.corpus_groups(task), est, name="dummy", cache_dir=None, log=lambda *_: None)
    song_corpora = {fit.corpus_of(s) for s in SONG_SOURCES}
    assert song_corpora <= set(seen)
    for corpus, trained in seen.items():
        for i in trained:
            job = jobs[i]
            assert fit.corpus_of(job.row["source"]) != corpus
            if job.mix is not None:
                assert fit.corpus_of(meta["bed"][i]) != corpus
    # The mixes themselves are never scored, and some song mixes did train the other folds.
    mixes = np.array([j.mix is not None for j in jobs])
    assert np.isnan(proba[mixes]).all() and not np.isnan(proba[~mixes]).any()
    assert any(jobs[i].mix is not None for i in seen["gugak"])
    # mir1k is a bed corpus too (its accompaniment): held out, none of its voices or its beds trained.
    assert not any(meta["bed"][i] == "mir1k_accomp" for i in seen["mir1k"])


def test_music_floor_drops_only_speech_over_quiet_music(data_dir):
    rows = read_manifest(data_dir, "train")
    category = {r["path"]: r["category"] for r in rows}
    every = plan_jobs(rows, augment_mixes=200)
    floored = plan_jobs(rows, augment_mixes=200, music_floor_db=6.0)

    def dropped(j):
        return j.mix is not None and category[j.mix.bed] == "music" and j.mix.snr_db < 6.0

    # The others are the same draws in the same order, so their cached features still serve.
    assert floored == [j for j in every if not dropped(j)]
    assert 0 < len(every) - len(floored) < 200
    assert any(j.mix is not None and category[j.mix.bed] == "music" for j in floored)  # louder speech stays
    assert any(j.mix is not None and j.mix.snr_db < 6.0 for j in floored)  # as does speech over noise
