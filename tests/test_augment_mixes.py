"""Augmentation mixes kept out of the folds they would leak into: singing over instrumental music
(labelled song), non-speech chopped to a talker's syllable rhythm (labelled as the clip), and non-verbal
vocal sounds made from a talker's vowels (labelled noise)."""
from __future__ import annotations

import numpy as np
import pytest
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


def _folds(jobs, monkeypatch):
    """Which jobs trained each leave-one-corpus-out fold (held-out corpus -> job indices), the meta and
    the fold predictions; checks that no fold trained on its corpus, as a clip or as a mix's other file."""
    meta = {c: np.array([_meta_value(j, c) for j in jobs]) for c in META_COLS if c != "job"}
    meta["job"] = np.arange(len(jobs)).astype(str)
    X = np.arange(len(jobs), dtype=float)[:, None]  # column 0: the job's index, to see who trained
    task = loco.corpus_groups(fit.sound_task(Table(X, meta)))
    seen: dict[str, set[int]] = {}
    real_fit = loco.fit_weighted

    def recording_fit(est, X, y, w):
        held_out = next(c for c in np.unique(task.groups) if c not in set(task.groups[X[:, 0].astype(int)]))
        seen[held_out] = set(X[:, 0].astype(int).tolist())
        return real_fit(est, X, y, w)

    monkeypatch.setattr(loco, "fit_weighted", recording_fit)
    est = Pipeline([("clf", DummyClassifier(strategy="prior"))])
    proba = loco.loco_proba(task, est, name="dummy", cache_dir=None, log=lambda *_: None)
    for corpus, trained in seen.items():
        for i in trained:
            assert fit.corpus_of(jobs[i].row["source"]) != corpus
            if jobs[i].mix is not None:
                assert fit.corpus_of(meta["bed"][i]) != corpus
    # The mixes themselves are never scored.
    mixes = np.array([j.mix is not None for j in jobs])
    assert np.isnan(proba[mixes]).all() and not np.isnan(proba[~mixes]).any()
    return seen, meta


def test_a_held_out_corpus_leaves_its_song_mixes_out_of_training(data_dir, monkeypatch):
    jobs = plan_jobs(read_manifest(data_dir, "train"), augment_mixes=0, song_mixes=120)
    seen, meta = _folds(jobs, monkeypatch)
    assert {fit.corpus_of(s) for s in SONG_SOURCES} <= set(seen)
    assert any(jobs[i].mix is not None for i in seen["gugak"])  # some song mixes did train the other folds
    # mir1k is a bed corpus too (its accompaniment): held out, none of its voices or its beds trained.
    assert not any(meta["bed"][i] == "mir1k_accomp" for i in seen["mir1k"])


def _appended(rows, spec_type, aug: str, before: dict, **more) -> list:
    """The jobs ``more`` adds to ``plan_jobs(rows, **before)``, checked to be appended (the others keep
    their cache keys), seeded, of ``spec_type`` and marked ``aug`` in the tables' meta."""
    first = plan_jobs(rows, **before)
    jobs = plan_jobs(rows, **before, **more)
    assert jobs[:len(first)] == first  # appended, from their own generator: cached jobs keep their keys
    assert plan_jobs(rows, **before, **more) == jobs  # seeded
    added = jobs[len(first):]
    assert len(added) == sum(more.values()) and all(isinstance(j.mix, spec_type) for j in added)
    assert {_meta_value(j, "aug").split(":")[0] for j in added} == {aug}
    return added


def test_rhythm_mixes_chop_non_speech_to_a_talkers_rhythm_and_leave_the_other_jobs_alone(data_dir):
    rows = read_manifest(data_dir, "train")
    row = {r["path"]: r for r in rows}
    rhythm = _appended(rows, augment.RhythmSpec, "mix-rhythm", dict(augment_mixes=40, song_mixes=30), rhythm_mixes=60)
    assert {j.row["category"] for j in rhythm} == {"music", "noise", "nature"}  # labelled as the clip
    assert all(j.row["path"] == j.mix.clip and row[j.mix.donor]["category"] == "speech" for j in rhythm)
    assert not any("babble" in j.row["source"] for j in rhythm)  # chatter loops hold voices


def test_a_held_out_speech_corpus_leaves_the_rhythm_it_lent_out_of_training(data_dir, monkeypatch):
    jobs = plan_jobs(read_manifest(data_dir, "train"), augment_mixes=0, rhythm_mixes=150)
    seen, meta = _folds(jobs, monkeypatch)
    lent = {fit.corpus_of(b) for b in meta["bed"] if b}
    assert {"emotiontts", "librispeech"} <= lent
    for corpus in lent:
        assert any(jobs[i].mix is not None for i in seen[corpus])  # other talkers' rhythm still trains it
        assert not any(jobs[i].mix is not None and fit.corpus_of(meta["bed"][i]) == corpus for i in seen[corpus])


def test_imposed_rhythm_follows_the_talkers_pauses(data_dir):
    from dramapic_subs.media import read_audio

    talker = read_audio(data_dir / next(r["path"] for r in read_manifest(data_dir, "train")
                                        if r["source"].startswith("librispeech")), sr=16000)[:16000 * 4]
    noise = np.random.default_rng(0).standard_normal(len(talker)).astype(np.float32) * 0.1
    out = augment.impose_rhythm(noise, talker, sr=16000, floor=0.05)
    level = augment.loudness_contour(out, sr=16000)
    voice = augment.loudness_contour(talker, sr=16000)
    assert np.corrcoef(level, voice)[0, 1] > 0.8  # the noise now rises and falls with the syllables
    assert np.corrcoef(augment.loudness_contour(noise, sr=16000), voice)[0, 1] < 0.3  # it did not before
    quiet, loud = voice < 0.05, voice > 0.5
    assert quiet.mean() > 0.05 and np.abs(out[quiet]).mean() < 0.2 * np.abs(out[loud]).mean()
    # Same active power as the clip: the rhythm mixes' gains mean what the other mixes' do.
    assert abs(augment._active_power(out) / augment._active_power(noise) - 1) < 1e-3


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


def test_vocal_mixes_are_the_talkers_rows_labelled_noise_and_leave_the_other_jobs_alone(data_dir):
    rows = read_manifest(data_dir, "train")
    row = {r["path"]: r for r in rows}
    vocal = _appended(rows, augment.VocalSpec, "mix-vocal", dict(augment_mixes=40, rhythm_mixes=60), vocal_mixes=90)
    assert all(row[j.row["path"]]["category"] == "speech" and j.row["path"] == j.mix.clip == j.mix.bed for j in vocal)
    # Not talking: noise, and no gender for the gender model to learn from (the manifest's rows untouched).
    assert {j.row["category"] for j in vocal} == {"noise"} and {j.row["gender"] for j in vocal} == {""}
    assert {j.mix.kind for j in vocal} == set(augment.VOCAL_KINDS)


def test_a_held_out_speech_corpus_leaves_its_vocal_sounds_out_of_training(data_dir, monkeypatch):
    jobs = plan_jobs(read_manifest(data_dir, "train"), augment_mixes=0, vocal_mixes=150)
    seen, meta = _folds(jobs, monkeypatch)
    lent = {fit.corpus_of(j.row["source"]) for j in jobs if j.mix is not None}
    assert {"emotiontts", "librispeech"} <= lent
    for corpus in lent:
        assert any(jobs[i].mix is not None for i in seen[corpus])  # other talkers' vowels still train it
        assert not any(jobs[i].mix is not None and fit.corpus_of(jobs[i].row["source"]) == corpus
                       for i in seen[corpus])


def _envelope_period_s(y: np.ndarray, *, sr: int) -> float:
    """The strongest period of ``y``'s loudness contour between 0.1 and 0.5 s."""
    env = augment.loudness_contour(y, sr=sr)[::160]  # 10 ms steps
    env = env - env.mean()
    ac = np.correlate(env, env, mode="full")[len(env) - 1:]
    return (10 + int(np.argmax(ac[10:50]))) / 100


@pytest.mark.parametrize("kind", sorted(set(augment.VOCAL_KINDS)))
def test_vocal_sounds_are_made_of_the_talkers_voice_at_its_power(data_dir, kind):
    from dramapic_subs.media import read_audio

    talker = read_audio(data_dir / next(r["path"] for r in read_manifest(data_dir, "train")
                                        if r["source"].startswith("librispeech")), sr=16000)
    outs = [augment.vocalise(talker, sr=16000, kind=kind, rng=np.random.default_rng(seed)) for seed in range(3)]
    for out in outs:
        assert 2.0 <= len(out) / 16000 <= 4.0 and np.isfinite(out).all()
        # Same active power as the talker: the mixes' gains mean what the other mixes' do.
        assert abs(augment._active_power(out) / augment._active_power(talker) - 1) < 1e-3
    assert not np.array_equal(outs[0], outs[1])  # seeded, and each seed its own
    if kind == "laugh":  # "ha"s at 4-6 a second
        assert all(0.15 <= _envelope_period_s(out, sr=16000) <= 0.26 for out in outs)


def test_no_vowel_no_vocal_sound():
    noise = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    out = augment.vocalise(noise, sr=16000, kind="laugh", rng=np.random.default_rng(0))
    assert len(out) == 32000 and not out.any()  # silent: the training tables drop silent windows
