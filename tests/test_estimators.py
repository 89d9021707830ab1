"""The npz model format: numpy predictions equal scikit-learn's, and bad bundles are refused in one line.

The estimators are fitted on real feature rows of dev clips, computed by the
product's own featurizer (plus one synthetic case with missing values).
"""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from dramapic_subs.errors import ModelError
from dramapic_subs.estimators import NumpyClassifier, export
from dramapic_subs.features import FeatureSpec
from dramapic_subs.representations import SileroVad
from dramapic_subs.train.fit import SUBSAMPLES_FEATURES, joined
from dramapic_subs.models import ModelBundle, default_models_dir, load_bundle, save_bundle, sha256_file
from dramapic_subs.train.tables import build_tables, plan_jobs, read_manifest, spectral_key

from .conftest import run_cli

TOL = 1e-6  # the bar; the measured differences are ~1e-15


@pytest.fixture(scope="module")
def dev_table(data_dir, tmp_path_factory):
    """Feature rows (the shipped sound model's n_fft and hop, float32 as the product computes them) of
    10 short dev clips per category."""
    rows = [r for r in read_manifest(data_dir, "dev") if float(r["duration_s"]) <= 15]
    picked = []
    for category in ("speech", "song", "music", "noise", "nature"):
        of_cat = sorted((r for r in rows if r["category"] == category), key=lambda r: (r["source"], r["path"]))
        picked += of_cat[:: max(1, len(of_cat) // 10)][:10]
    sound = load_bundle("sound_type")  # its other inputs too, for the shipped-bundle test
    vad = next(rep.weights for rep in sound.inputs if isinstance(rep, SileroVad))
    tables = build_tables(plan_jobs(picked, augment_mixes=0), data_dir=data_dir, specs=[sound.spec],
                          cache_dir=tmp_path_factory.mktemp("cache"), n_jobs=2, vad=vad)
    table = tables[spectral_key(sound.spec)]
    table.sound_X = joined(tables, sound.inputs).X
    return table


def _scaled(clf) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("clf", clf)])


def _hgb(**kw) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, min_samples_leaf=5, random_state=0, **kw)


def _mlp() -> MLPClassifier:
    return MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=150, random_state=0)


CANDIDATES = {
    "hgb": lambda: _scaled(_hgb()),
    "logreg": lambda: _scaled(LogisticRegression(C=0.3, max_iter=2000)),
    "mlp": lambda: _scaled(_mlp()),
    "mlp_tanh": lambda: _scaled(MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", max_iter=100,
                                              random_state=0)),
    "vote": lambda: _scaled(VotingClassifier([("hgb", _hgb()), ("logreg", LogisticRegression(max_iter=2000))],
                                             voting="soft")),
    "vote_weighted_3": lambda: _scaled(VotingClassifier(
        [("hgb", _hgb()), ("logreg", LogisticRegression(max_iter=2000)), ("mlp", _mlp())],
        voting="soft", weights=[2.0, 1.0, 0.5])),
    "hgb_bare": lambda: _hgb(),
    "logreg_bare": lambda: LogisticRegression(max_iter=5000),
}
if SUBSAMPLES_FEATURES:  # scikit-learn >= 1.4: subsampling changes the training, not the trees' form
    CANDIDATES["hgb_sub"] = lambda: _scaled(_hgb(max_features=0.5))


def _fit(name: str, X: np.ndarray, y: np.ndarray):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # small MLPs on few rows: parity is what is tested
        return CANDIDATES[name]().fit(X, y)


def _max_diff(est, X: np.ndarray) -> float:
    model = NumpyClassifier(export(est))
    assert list(model.classes_) == [str(c) for c in est.classes_]
    return float(np.max(np.abs(model.predict_proba(X) - est.predict_proba(X))))


@pytest.mark.parametrize("name", sorted(CANDIDATES))
@pytest.mark.parametrize("classes", ["five", "binary"])
def test_numpy_probabilities_equal_sklearn_on_dev_features(dev_table, name, classes):
    X, y = dev_table.X, dev_table.meta["category"]
    if classes == "binary":
        y = np.where(y == "speech", "speech", "other")
    half = np.arange(len(X)) % 2 == 0  # fit on half the windows, predict the other half
    est = _fit(name, X[half], y[half])
    assert len(X) > 200 and X.dtype == np.float32 and len(est.classes_) == (5 if classes == "five" else 2)
    assert _max_diff(est, X[~half]) < TOL


def test_trees_send_missing_values_where_sklearn_does():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 6))
    y = np.array(["a", "b", "c"])[(X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)]
    X[rng.random(X.shape) < 0.15] = np.nan  # learned missing-value directions
    est = _hgb().fit(X, y)
    X_new = rng.normal(size=(300, 6))
    X_new[rng.random(X_new.shape) < 0.3] = np.nan
    X_new[:5] = np.nan  # all-missing rows
    assert _max_diff(est, X_new) < TOL
    clean = _hgb().fit(np.nan_to_num(X), y)  # never saw NaN: sklearn sends it to the larger child
    assert _max_diff(clean, X_new) < TOL


@pytest.mark.parametrize("classes", ["five", "binary"])
def test_boosted_trees_equal_sklearn_exactly_and_each_row_alone(dev_table, classes):
    # The trees' sums are added in scikit-learn's order, so five-class probabilities are scikit-learn's
    # to the bit, and a row's are the same in a batch of any size: the voice gate predicts block by
    # block and the analysis keeps those rows.
    X, y = dev_table.X.astype(np.float64), dev_table.meta["category"]
    if classes == "binary":
        y = np.where(y == "speech", "speech", "other")
    half = np.arange(len(X)) % 2 == 0
    est = _hgb().fit(X[half], y[half])
    model = NumpyClassifier(export(est))
    batch = model.predict_proba(X[~half])
    if classes == "five":  # softmax as scikit-learn computes it; the binary link (expit) only to rounding
        assert batch.tobytes() == est.predict_proba(X[~half]).tobytes()
    assert np.max(np.abs(batch - est.predict_proba(X[~half]))) < 1e-15
    alone = np.vstack([model.predict_proba(X[~half][i:i + 1]) for i in range(50)])
    in_thirties = np.vstack([model.predict_proba(X[~half][i:i + 30]) for i in range(0, 90, 30)])
    assert alone.tobytes() == batch[:50].tobytes() and in_thirties.tobytes() == batch[:90].tobytes()


@pytest.mark.parametrize("est, needle", [
    (RandomForestClassifier(n_estimators=2, random_state=0), "RandomForestClassifier"),
    (VotingClassifier([("lr", LogisticRegression())], voting="hard"), "hard voting"),
])
def test_unsupported_estimators_are_refused_at_export(est, needle):
    est.fit(np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2)
    with pytest.raises(ModelError, match=needle):
        export(est)


def test_shipped_bundles_load_without_sklearn_and_read_dev_clips(dev_table):
    sound, gender = load_bundle("sound_type"), load_bundle("gender")
    assert type(sound.estimator) is NumpyClassifier and type(gender.estimator) is NumpyClassifier
    proba = sound.predict_proba(dev_table.sound_X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    pred = np.asarray(sound.labels)[proba.argmax(axis=1)]
    truth = dev_table.meta["category"]
    assert (pred == truth).mean() > 0.7, (pred == truth).mean()
    assert ((pred == "speech") == (truth == "speech")).mean() > 0.9


def test_save_is_byte_for_byte_reproducible(dev_table, tmp_path):
    est = _fit("logreg", dev_table.X, dev_table.meta["category"])
    bundle = ModelBundle("sound_type", est, ["speech", "song", "music", "noise", "nature"], FeatureSpec(1024))
    save_bundle(bundle, tmp_path / "a")
    save_bundle(bundle, tmp_path / "b")
    assert (tmp_path / "a" / "sound_type.npz").read_bytes() == (tmp_path / "b" / "sound_type.npz").read_bytes()
    loaded = load_bundle("sound_type", directory=tmp_path / "a")
    np.testing.assert_allclose(loaded.predict_proba(dev_table.X), bundle.predict_proba(dev_table.X), atol=1e-12)


# --- bundles this code cannot use: one line saying what is needed --------------------------------


@pytest.fixture
def models_copy(tmp_path):
    dst = tmp_path / "models"
    shutil.copytree(default_models_dir(), dst, ignore=shutil.ignore_patterns("__*"))
    return dst


def _edit_card(models, **changes) -> None:
    path = models / "gender.json"
    card = json.loads(path.read_text())
    card.update(changes)
    path.write_text(json.dumps(card))


def _rewrite_arrays(models, edit) -> None:
    """Change gender.npz's arrays and re-sign it, as a careless exporter would."""
    blob = models / "gender.npz"
    with np.load(blob, allow_pickle=True) as npz:
        arrays = {k: npz[k] for k in npz.files}
    edit(arrays)
    with open(blob, "wb") as f:
        np.savez(f, **arrays)
    _edit_card(models, sha256=sha256_file(blob))


def test_an_altered_byte_is_refused(models_copy):
    blob = models_copy / "gender.npz"
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256 does not match"):
        load_bundle("gender", directory=models_copy)


@pytest.mark.parametrize("edit, needle", [
    (lambda a: a.pop("0.mean"), "lacks the array '0.mean'"),
    (lambda a: a.update({"1.kind": np.asarray("forest")}), "estimator kind 'forest' is not supported"),
    (lambda a: a.update({"0.mean": np.zeros(3)}), "do not fit together"),
    (lambda a: a.update({"classes": np.asarray([{"x": 1}], dtype=object)}), "unreadable model arrays"),
])
def test_broken_arrays_are_one_line_errors(models_copy, edit, needle):
    _rewrite_arrays(models_copy, edit)
    with pytest.raises(ModelError, match=needle) as info:
        load_bundle("gender", directory=models_copy)
    assert "\n" not in str(info.value) and "gender.npz" in str(info.value)


def test_unknown_format_and_old_pickles_name_what_they_need(models_copy, tmp_path):
    _edit_card(models_copy, format=2)
    proc = run_cli(tmp_path / "any.mp4", "--models", models_copy)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr
    assert "bundle format 2" in lines[0] and "reads (format 1)" in lines[0]
    card = json.loads((models_copy / "gender.json").read_text())
    del card["format"]
    (models_copy / "gender.json").write_text(json.dumps(card))
    (models_copy / "gender.joblib").write_bytes(b"pickled")
    with pytest.raises(ModelError, match=r"pickled bundle of an older release.*scikit-learn .*dramapic-subs-train export"):
        load_bundle("gender", directory=models_copy)
