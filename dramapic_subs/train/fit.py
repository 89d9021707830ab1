"""Model selection on grouped cross-validation, then the final fit.

Folds group by source for the sound-type model (a new corpus must be
predicted by models that never saw it) and by speaker for the gender model.
Windows of one file never straddle folds. No evaluation data is ever fitted.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .report import gender_scores, sound_scores
from .tables import Table


def candidates(seed: int = 0) -> dict[str, Pipeline]:
    """Estimators compared on grouped CV; the best by its task's score ships."""
    return {
        "hgb": Pipeline([("scale", StandardScaler()), ("clf", HistGradientBoostingClassifier(
            max_iter=250, learning_rate=0.06, max_leaf_nodes=31, min_samples_leaf=40,
            l2_regularization=1.0, random_state=seed))]),
        "logreg": Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=0.3, max_iter=2000))]),
        "mlp": Pipeline([("scale", StandardScaler()), ("clf", MLPClassifier(
            hidden_layer_sizes=(128, 64), alpha=1e-3, early_stopping=True, max_iter=200, random_state=seed))]),
    }


@dataclass
class Task:
    """What one model learns: rows, labels, fold groups and its score."""

    name: str
    table: Table
    y: np.ndarray
    groups: np.ndarray
    weights: np.ndarray
    score: Callable[[np.ndarray, np.ndarray], dict]
    key: str  # the score that picks the winner


def balanced_weights(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each class weighs the same; inside a class a big source counts ~sqrt(size).

    Without it the largest corpora (hours of one piano album) would decide
    what "music" means.
    """
    w = np.zeros(len(y))
    for cls in np.unique(y):
        in_cls = y == cls
        for g in np.unique(groups[in_cls]):
            m = in_cls & (groups == g)
            w[m] = 1.0 / np.sqrt(m.sum())
        w[in_cls] /= w[in_cls].sum()
    return w * len(y) / w.sum()


def fit_weighted(est: Pipeline, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> Pipeline:
    """Fit with sample weights where the classifier takes them (MLP does not)."""
    name = est.steps[-1][0]
    if isinstance(est.steps[-1][1], MLPClassifier):
        return est.fit(X, y)
    return est.fit(X, y, **{f"{name}__sample_weight": w})


def cross_validate(task: Task, est: Pipeline, *, n_splits: int = 5) -> dict:
    """Out-of-fold predictions over grouped folds, scored as a whole."""
    pred = np.empty(len(task.y), dtype=task.y.dtype)
    for tr, te in GroupKFold(n_splits=n_splits).split(task.table.X, task.y, task.groups):
        model = fit_weighted(clone(est), task.table.X[tr], task.y[tr], task.weights[tr])
        pred[te] = model.predict(task.table.X[te])
    return task.score(task.y, pred)


def select_and_fit(task: Task, *, names: list[str] | None = None, log=print) -> tuple[Pipeline, dict]:
    """Cross-validate the candidates, fit the winner on all rows; return it and the CV table."""
    cands = candidates()
    names = names or list(cands)
    cv = {}
    for name in names:
        cv[name] = cross_validate(task, cands[name])
        log(f"  {task.name} {name}: {task.key}={cv[name][task.key]:.3f}")
    best = max(names, key=lambda n: cv[n][task.key])
    model = fit_weighted(clone(cands[best]), task.table.X, task.y, task.weights)
    return model, {"chosen": best, "cv": cv}


def sound_task(table: Table) -> Task:
    y = table.meta["category"]
    groups = table.meta["source"]
    return Task("sound_type", table, y, groups, balanced_weights(y, groups), sound_scores, "macro_f1")


def gender_task(table: Table) -> Task:
    speech = table.where((table.meta["category"] == "speech") & (table.meta["gender"] != ""))
    y = speech.meta["gender"]
    groups = speech.meta["speaker"]
    return Task("gender", speech, y, groups, balanced_weights(y, speech.meta["source"]), gender_scores,
                "balanced_accuracy")


def versions() -> dict[str, str]:
    import joblib
    import librosa
    import sklearn

    return {"python": platform.python_version(), "numpy": np.__version__, "scikit-learn": sklearn.__version__,
            "librosa": librosa.__version__, "joblib": joblib.__version__}
