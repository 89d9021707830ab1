"""The training pipeline on a small slice of ../shared/data: tables, caching, leave-one-corpus-out, bundles."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dramapic_subs.errors import ModelError
from dramapic_subs.features import FeatureSpec, feature_names
from dramapic_subs.models import ModelBundle, default_models_dir, load_bundle, save_bundle
from dramapic_subs.representations import Spectral, encoder_from_file
from dramapic_subs.train import experiments, fit, loco, peers
from dramapic_subs.train.report import experiments_markdown, peer_markdown
from dramapic_subs.train.tables import SPEAKER, build_tables, plan_jobs, read_manifest

SPECS = [FeatureSpec(512), FeatureSpec(1024)]


@pytest.fixture(scope="module")
def small(data_dir, tmp_path_factory):
    rows = read_manifest(data_dir, "train")
    # Six files of every source, spread over it, so folds have several speakers and sources per class.
    picked = []
    for source in sorted({r["source"] for r in rows}):
        of_source = [r for r in rows if r["source"] == source]
        picked += of_source[:: max(1, len(of_source) // 6)][:6]
    jobs = plan_jobs(picked, augment_mixes=12, seed=3)
    cache = tmp_path_factory.mktemp("cache")
    tables = build_tables(jobs, data_dir=data_dir, specs=SPECS, cache_dir=cache, n_jobs=2)
    return jobs, tables, cache


def test_tables_line_up_across_n_fft_and_are_cached(small, data_dir):
    jobs, tables, cache = small
    a, b = tables[512], tables[1024]
    assert a.X.shape[1] == len(feature_names()) and len(a) == len(b) > 100
    for col in ("path", "category", "job"):
        np.testing.assert_array_equal(a.meta[col], b.meta[col])
    assert np.isfinite(a.X).all() and np.isfinite(b.X).all()
    assert len(list(cache.glob("*.npy"))) == 2 * len(jobs)
    again = build_tables(jobs, data_dir=data_dir, specs=SPECS[1:], cache_dir=cache, n_jobs=1)
    np.testing.assert_array_equal(again[1024].X, b.X)
    assert {m for m in a.meta["aug"] if m.startswith("mix")} and set(a.meta["category"]) >= {"speech", "music"}


def test_leaving_a_corpus_out_never_trains_on_it_nor_on_mixes_that_used_it(small, monkeypatch):
    _, tables, _ = small
    task = loco.corpus_groups(fit.sound_task(tables[1024]))
    assert {"mir1k", "us8k", "moodist"} <= set(task.groups)  # one group per corpus, not per channel or fold
    assert not {g for g in task.groups if "_" in g}
    seen = []
    real_fit = loco.fit_weighted

    def spy(est, X, y, w):
        seen.append({tuple(r) for r in X[:, :3]})  # which rows trained this fold
        return real_fit(est, X, y, w)

    monkeypatch.setattr(loco, "fit_weighted", spy)
    proba = loco.loco_proba(task, fit.candidates()["logreg"], name="logreg", cache_dir=None, log=lambda *_: None)
    beds, mixes = loco.bed_corpora(task), loco.mix_rows(task)
    held_out = [c for c in np.unique(task.groups) if ((task.groups == c) & ~mixes).any()]
    assert len(seen) == len(held_out) > 5
    for corpus, trained in zip(held_out, seen):
        banned = (task.groups == corpus) | (beds == corpus)
        assert not trained & {tuple(r) for r in task.table.X[banned][:, :3]}
    assert np.isnan(proba[mixes]).all() and not np.isnan(proba[~mixes]).any()  # every recording scored once


def test_some_folds_first_or_only_give_those_folds_the_same_predictions(small, tmp_path):
    _, tables, _ = small
    task = loco.corpus_groups(fit.sound_task(tables[1024]))
    est = fit.candidates()["logreg"]
    order = []
    part = loco.loco_proba(task, est, name="logreg", cache_dir=tmp_path, only=("mir1k", "fsdd"), first=("mir1k",),
                           log=lambda m: order.append(m.split("held out ")[1].split(" ")[0]))
    assert order == ["mir1k", "fsdd"]
    ran = np.isin(task.groups, ["mir1k", "fsdd"]) & ~loco.mix_rows(task)
    assert not np.isnan(part[ran]).any() and np.isnan(part[~ran]).all()
    whole = loco.loco_proba(task, est, name="logreg", cache_dir=None, log=lambda *_: None)
    np.testing.assert_allclose(part[ran], whole[ran])
    again = loco.loco_proba(task, est, name="logreg", cache_dir=tmp_path, only=("fsdd",), log=order.append)
    assert order == ["mir1k", "fsdd"]  # read from the cache, not refitted
    np.testing.assert_array_equal(again[task.groups == "fsdd"], part[task.groups == "fsdd"])


def test_in_corpus_folds_never_predict_a_speaker_they_trained_on(small, monkeypatch):
    _, tables, _ = small
    task = loco.corpus_groups(fit.sound_task(tables[1024]))
    speaker_of = {tuple(r[:4]): s for r, s in zip(task.table.X, task.table.meta["speaker"])}
    checked = []

    class Spy:
        """The fitted model, refusing to predict rows of a speaker (or file) it trained on."""

        def __init__(self, model, X):
            self.model, self.trained = model, {speaker_of[tuple(r[:4])] for r in X}
            self.classes_ = model.classes_

        def predict_proba(self, X):
            tested = {speaker_of[tuple(r[:4])] for r in X}
            assert tested and not tested & self.trained
            checked.append(len(tested))
            return self.model.predict_proba(X)

    real_fit = loco.fit_weighted
    monkeypatch.setattr(loco, "fit_weighted", lambda est, X, y, w: Spy(real_fit(est, X, y, w), X))
    heard = loco.in_corpus_proba(task, fit.candidates()["logreg"], name="logreg", cache_dir=None, log=lambda *_: None)
    mixes = loco.mix_rows(task)
    assert len(checked) == 5 and np.isnan(heard[mixes]).all() and not np.isnan(heard[~mixes]).any()


def test_one_temperature_between_an_over_and_an_under_confident_view(small):
    _, tables, _ = small
    task = loco.corpus_groups(fit.sound_task(tables[1024]))
    labels = np.unique(task.y)
    truth = np.searchsorted(labels, task.y)
    rng = np.random.default_rng(0)

    def view(right_share: float, confidence: float) -> np.ndarray:
        guess = np.where(rng.random(len(truth)) < right_share, truth, (truth + 1) % len(labels))
        p = np.full((len(truth), len(labels)), (1 - confidence) / (len(labels) - 1))
        p[np.arange(len(truth)), guess] = confidence
        return p

    over, under = view(0.6, 0.95), view(0.95, 0.6)  # sure of itself and often wrong; right and shy
    t, info = loco.two_view_temperature(task, over, under)
    own = info["temperature_by_view"]
    assert own["in_corpus"] < 1 < own["out_of_corpus"] and own["in_corpus"] < t < own["out_of_corpus"]
    assert set(info["ece_by_view"]) == {"in_corpus", "out_of_corpus"}


def test_select_fit_save_and_load(small, tmp_path, monkeypatch):
    _, tables, _ = small
    task = fit.gender_task(tables[512])
    model, info = loco.select_and_fit(task, names=["logreg"], cache_dir=tmp_path / "loco", log=lambda *_: None)
    assert info["chosen"] == "logreg" and info["smooth"] in (1, 3, 5, 7, 9, 11) and 0.1 < info["temperature"] < 10
    assert info["smooth_change"] is None  # no spectral means to compare in these bare rows
    assert set(info["per_corpus"]) >= {"librispeech", "ravdess"}
    fits = []
    monkeypatch.setattr(loco, "fit_weighted", lambda *a: fits.append(1) or fit.fit_weighted(*a))
    again, info2 = loco.select_and_fit(task, names=["logreg"], cache_dir=tmp_path / "loco", log=lambda *_: None)
    assert len(fits) == 1 and info2["temperature"] == info["temperature"]  # folds from the cache; only the final fit
    bundle = ModelBundle("gender", model, ["female", "male"], FeatureSpec(512), smooth=info["smooth"])
    save_bundle(bundle, tmp_path)
    loaded = load_bundle("gender", directory=tmp_path)
    proba = loaded.predict_proba(task.table.X[:10])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    (tmp_path / "gender.npz").write_bytes((tmp_path / "gender.npz").read_bytes() + b"\0")
    with pytest.raises(ModelError, match="sha256"):
        load_bundle("gender", directory=tmp_path)


def test_gender_trains_on_embedded_speech_recorded_and_mixed_over_beds(data_dir, tmp_path):
    """Speech over music or noise is what drama dialogue often is: the gender model learns it too."""
    rows = read_manifest(data_dir, "train")
    picked = [r for r in rows if r["category"] == "speech"][:3] + [r for r in rows if r["category"] == "music"][:2]
    speaker = encoder_from_file(default_models_dir() / "speaker_encoder.npz")
    jobs = plan_jobs(picked, augment_mixes=2, seed=5)
    tables = build_tables(jobs, data_dir=data_dir, specs=[FeatureSpec(512)], cache_dir=tmp_path, n_jobs=1,
                          encoder=speaker.encoder)
    emb, meta = tables[SPEAKER].X, tables[SPEAKER].meta
    mixed = np.char.startswith(meta["aug"].astype(str), "mix")
    speech = meta["category"] == "speech"
    assert mixed.any() and (speech & ~mixed).any() and (~speech).any()
    np.testing.assert_allclose(np.linalg.norm(emb[speech], axis=1), 1.0, atol=1e-4)  # every speech window embedded
    assert not emb[~speech].any()
    task = fit.gender_task(fit.joined({512: tables[512], SPEAKER: tables[SPEAKER]}, (Spectral(FeatureSpec(512)), speaker)),
                           (Spectral(FeatureSpec(512)), speaker))
    assert loco.mix_rows(task).any() and len(task.y) == int(speech.sum())


def test_experiment_grid_reports_the_winning_n_fft(small):
    _, tables, _ = small
    runs = experiments.grid(tables, tables, names=["tree"], log=lambda *_: None)
    assert len(runs) == 2 * 2 * 2  # n_fft x task x feature set
    seed_runs = [r for r in runs if r.features == "seed"]
    assert seed_runs and all(0 <= r.scores.get("macro_f1", r.scores.get("accuracy")) <= 1 for r in seed_runs)
    text = experiments_markdown(runs)
    assert "Which n_fft wins" in text and "| 1024 | seed | tree |" in text
    best_ours = max(r.scores["macro_f1"] for r in runs if r.task == "sound_type" and r.features == "ours")
    assert f"sound_type, our features: best macro F1 {best_ours:.3f}" in text


def test_window_means_average_the_frames_centred_in_each_span():
    frames = np.array([0.0, 1.0, 1.0, 0.0, 0.5])  # frames of 10 samples, centres 5, 15, 25, 35, 45
    got = peers.window_means(frames, [(0, 20), (10, 40), (40, 50), (60, 70)], frame=10)
    np.testing.assert_allclose(got, [0.5, 2 / 3, 0.5, 0.0])


def test_peer_comparison_scores_both_detectors_on_the_dev_table_windows(data_dir, tmp_path):
    rows = read_manifest(data_dir, "dev")
    picked = [r for r in rows if r["category"] == "speech"][:4] + [r for r in rows if r["category"] == "music"][:4]
    table = build_tables(plan_jobs(picked, augment_mixes=0), data_dir=data_dir, specs=[FeatureSpec(1024)],
                         cache_dir=tmp_path, n_jobs=1)[1024]
    sound = load_bundle("sound_type")
    calls = []

    def always_speech(y, spans):
        calls.append(len(spans))
        return np.ones(len(spans))

    result = peers.compare(picked, data_dir, sound=sound, categories=table.meta["category"],
                           peer=always_speech, log=lambda *_: None)
    assert sum(calls) == len(table) == result.windows
    said = result.scores["silero"]
    assert said["speech_recall"] == 1.0 and said["music_song_called_speech"] == 1.0
    assert said["speech_vs_rest_bacc"] == 0.5
    assert result.scores["ours"]["speech_vs_rest_bacc"] > 0.8
    text = peer_markdown(result)
    assert "| Silero VAD | 0.500 | 1.000 | 1.000 |" in text
    with pytest.raises(RuntimeError, match="line up"):
        peers.compare(picked[:-1], data_dir, sound=sound, categories=table.meta["category"],
                      peer=always_speech, log=lambda *_: None)


def test_experiment_runs_are_reused_from_an_earlier_report(small, tmp_path):
    _, tables, _ = small
    runs = experiments.grid(tables, tables, names=["tree"], log=lambda *_: None)
    marked = [experiments.Run(**{**r.__dict__, "seconds": -1.0}) for r in runs]
    path = tmp_path / "experiments.json"
    path.write_text(json.dumps({"runs": [r.__dict__ for r in marked], "peer": None}))
    done = experiments.load_runs(path)
    again = experiments.grid(tables, tables, names=["tree", "logreg"], done=done, log=lambda *_: None)
    reused = [r for r in again if r.seconds == -1.0]
    assert len(reused) == len(runs) and {r.classifier for r in reused} == {"tree"}
    assert {r.classifier for r in again if r.seconds >= 0} == {"logreg"}
    assert experiments.load_runs(tmp_path / "missing.json") == {}
    pooled = experiments.pooled(tables, tables, sound_clf="logreg", gender_clf="logreg", log=lambda *_: None)
    assert [(r.task, r.n_fft, r.train_n_fft) for r in pooled] == [
        (t, n, "all") for t in ("sound_type", "gender") for n in (512, 1024)]
    kept = {experiments.key(r): experiments.Run(**{**r.__dict__, "seconds": -1.0}) for r in pooled}
    again = experiments.pooled(tables, tables, sound_clf="logreg", gender_clf="logreg", done=kept,
                               log=lambda *_: None)
    assert all(r.seconds == -1.0 for r in again)


def test_cached_fold_predictions_belong_to_the_weights_they_were_fitted_with(tmp_path):
    """A fold cached under one weighting must not answer for another: the prior-only classifier's
    predictions follow the sample weights, so stale files would show as unchanged probabilities."""
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import Pipeline

    from dramapic_subs.train.tables import Table

    n = 60
    y = np.array(["music", "speech"] * (n // 2))
    meta = {"aug": np.array([""] * n), "bed": np.array([""] * n), "speaker": np.arange(n).astype(str),
            "source": np.repeat(["corpus_a", "corpus_b", "corpus_c"], n // 3)}
    est = Pipeline([("clf", DummyClassifier(strategy="prior"))])

    def proba(weights):
        task = fit.Task("sound_type", Table(np.zeros((n, 1)), meta), y, meta["source"], weights, None, "", ())
        return (loco.loco_proba(task, est, name="dummy", cache_dir=tmp_path, log=lambda *_: None),
                loco.in_corpus_proba(task, est, name="dummy", cache_dir=tmp_path, log=lambda *_: None))

    even = proba(np.ones(n))
    speech_heavy = proba(np.where(y == "speech", 3.0, 1.0))
    for before, after in zip(even, speech_heavy):
        np.testing.assert_allclose(before[:, 1], 0.5)
        np.testing.assert_allclose(after[:, 1], 0.75)
    assert len(list(tmp_path.glob("*.npy"))) == 2 * (3 + 1)  # three corpora and one in-corpus file, per weighting


def test_refinement_threshold_and_turn_pairs_see_embeddings_as_the_product_makes_them():
    from dramapic_subs.train.tables import Table
    from dramapic_subs.train.turn_model import _as_product, refine_threshold

    # Two 6-window clips, one voice each: unit vectors jittered around two directions.
    rng = np.random.default_rng(0)
    voices = np.eye(4)[[0, 1]]
    X = np.vstack([voices[k] + 0.1 * rng.standard_normal((6, 4)) for k in (0, 1)]).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    meta = {"job": np.repeat(["0", "1"], 6), "aug": np.full(12, ""), "speaker": np.repeat(["a", "b"], 6)}
    task = fit.Task("gender", Table(X, meta), np.repeat(["female", "male"], 6), meta["speaker"], np.ones(12),
                    score=None, key="")
    names = [f"spk{i}" for i in range(4)]
    pairs = np.r_[1 - np.sum(X[0:4] * X[2:6], 1), 1 - np.sum(X[6:10] * X[8:12], 1)]
    refine = refine_threshold(task, names, stride=2)
    assert refine == pytest.approx(np.quantile(pairs, 0.9), abs=1e-4)
    # Laid end to end, the voices change between windows 5 and 6: points 4 and 6 differ, so 5 keeps its own
    # embedding; without refinement it takes the blend of 4 and 6.
    cols = np.arange(4)
    refined = _as_product(X, cols, 2, refine)
    np.testing.assert_allclose(refined[5], X[5], atol=1e-6)
    blended = _as_product(X, cols, 2, None)[5]
    np.testing.assert_allclose(blended, (X[4] + X[6]) / np.linalg.norm(X[4] + X[6]), atol=1e-6)


def test_smoothing_is_chosen_to_stop_at_cuts_when_clips_are_short():
    """Clips of 4-10 windows, each one sound, answered right only 70% of the time window by window:
    averaging inside a clip fixes most errors, averaging across the cuts makes new ones. The choice
    must be a width over 1 that stops where the clip's (standardised) means jump."""
    from types import SimpleNamespace

    from dramapic_subs.train.report import sound_scores
    from dramapic_subs.train.tables import Table

    rng = np.random.default_rng(0)
    labels = np.array(["music", "nature", "noise", "song", "speech"])
    ys, X, jobs = [], [], []
    for clip in range(300):
        n, k = int(rng.integers(4, 11)), int(rng.integers(5))
        ys += [labels[k]] * n
        X.append(rng.normal(0, 1, (1, 3)) * 3 + rng.normal(0, 0.1, (n, 3)))  # each clip its own sound
        jobs += [str(clip)] * n
    y, X = np.array(ys), np.vstack(X)
    right = rng.random(len(y)) < 0.7
    guess = np.where(right, np.searchsorted(labels, y), rng.integers(5, size=len(y)))
    proba = np.full((len(y), 5), 0.1)
    proba[np.arange(len(y)), guess] = 0.6
    task = fit.Task("sound_type", Table(X, {"job": np.array(jobs)}), y, np.zeros(len(y)), np.ones(len(y)),
                    sound_scores, "macro_f1", (SimpleNamespace(names=["a_mean", "b_mean", "c_mean"]),))
    width, rule, scores = fit.choose_smoothing(task, proba)
    assert width > 1 and rule is not None and rule.columns == ("a_mean", "b_mean", "c_mean")
    best = scores[f"{width}/{rule.threshold:g}"]
    assert best > scores["1"] + 0.1 and best > scores[str(width)] + 0.05  # over none, and over not stopping
