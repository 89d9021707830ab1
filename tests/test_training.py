"""The training pipeline on a small slice of ../shared/data: tables, caching, grouped CV, bundles."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold

from dramapic_subs.errors import ModelError
from dramapic_subs.features import FeatureSpec, feature_names
from dramapic_subs.models import ModelBundle, load_bundle, save_bundle
from dramapic_subs.train import experiments, fit
from dramapic_subs.train.report import experiments_markdown
from dramapic_subs.train.tables import build_tables, plan_jobs, read_manifest

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


def test_grouped_folds_never_share_a_source_or_speaker(small):
    _, tables, _ = small
    for task in (fit.sound_task(tables[1024]), fit.gender_task(tables[512])):
        for tr, te in GroupKFold(n_splits=5).split(task.table.X, task.y, task.groups):
            assert not set(task.groups[tr]) & set(task.groups[te])


def test_select_fit_save_and_load(small, tmp_path):
    _, tables, _ = small
    task = fit.gender_task(tables[512])
    model, cv = fit.select_and_fit(task, names=["logreg"], log=lambda *_: None)
    assert cv["chosen"] == "logreg" and cv["smooth"] in (1, 3, 5, 7)
    bundle = ModelBundle("gender", model, ["female", "male"], FeatureSpec(512), smooth=cv["smooth"])
    save_bundle(bundle, tmp_path)
    loaded = load_bundle("gender", directory=tmp_path)
    proba = loaded.predict_proba(task.table.X[:10])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    (tmp_path / "gender.joblib").write_bytes((tmp_path / "gender.joblib").read_bytes() + b"\0")
    with pytest.raises(ModelError, match="sha256"):
        load_bundle("gender", directory=tmp_path)


def test_experiment_grid_reports_the_winning_n_fft(small):
    _, tables, _ = small
    runs = experiments.grid(tables, tables, names=["tree"], log=lambda *_: None)
    assert len(runs) == 2 * 2 * 2  # n_fft x task x feature set
    seed_runs = [r for r in runs if r.features == "seed"]
    assert seed_runs and all(0 <= r.scores.get("macro_f1", r.scores.get("accuracy")) <= 1 for r in seed_runs)
    text = experiments_markdown(runs, matched={})
    assert "Which n_fft wins" in text and "| 1024 | seed | tree |" in text
