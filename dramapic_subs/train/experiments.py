"""The seed's experiment, done across sources: n_fft x classifier x feature set, scored on dev.

Every configuration is fitted on the train tables (with the same class and
source weights as the shipped models) and scored on the dev tables, which no
fit or choice ever sees. The seed's own features are a column subset of ours:
chroma mean and variance and the mean STFT magnitude per band.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from ..features import feature_names
from .fit import candidates, fit_weighted, gender_task, sound_task
from .report import gender_scores, sound_scores
from .tables import Table

SEED_FEATURES = ["chroma_mean", "chroma_var"] + [f"band{i}_mean" for i in range(6)]
N_FFTS = (512, 1024, 2048, 4096)


def classifiers(seed: int = 0) -> dict[str, Pipeline]:
    """The seed's two classifiers (sklearn defaults, as it used them) and our candidates."""
    return {
        "tree": Pipeline([("clf", DecisionTreeClassifier(random_state=seed))]),
        "forest": Pipeline([("clf", RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed))]),
        **candidates(seed),
    }


@dataclass(frozen=True)
class Run:
    """One configuration's dev scores."""

    task: str
    n_fft: int
    train_n_fft: str      # the n_fft trained on, or "all" for the pooled tables
    features: str         # "seed" or "ours"
    classifier: str
    scores: dict
    seconds: float


def _columns(features: str) -> np.ndarray:
    names = feature_names()
    if features == "ours":
        return np.arange(len(names))
    return np.array([names.index(n) for n in SEED_FEATURES])


def _score_sound(model, dev: Table, cols: np.ndarray) -> dict:
    return sound_scores(dev.meta["category"], model.predict(dev.X[:, cols]))


def _score_gender(model, dev: Table, cols: np.ndarray) -> dict:
    speech = dev.where((dev.meta["category"] == "speech") & (dev.meta["gender"] != ""))
    return gender_scores(speech.meta["gender"], model.predict(speech.X[:, cols]))


def grid(train: dict[int, Table], dev: dict[int, Table], *, names: list[str] | None = None,
         done: dict[tuple, Run] | None = None, log=print) -> list[Run]:
    """Fit and score every (task, n_fft, feature set, classifier).

    ``done`` holds runs of an earlier report (by :func:`key`) that are taken
    as they are instead of being fitted again.
    """
    clfs = classifiers()
    names = names or list(clfs)
    done = done or {}
    runs = []
    for n_fft in sorted(train):
        tasks = {"sound_type": (sound_task(train[n_fft]), _score_sound),
                 "gender": (gender_task(train[n_fft]), _score_gender)}
        for task_name, (task, score) in tasks.items():
            for features in ("seed", "ours"):
                cols = _columns(features)
                for name in names:
                    run = done.get((task_name, n_fft, str(n_fft), features, name))
                    if run is None:
                        t0 = time.perf_counter()
                        model = fit_weighted(clone(clfs[name]), task.table.X[:, cols], task.y, task.weights)
                        run = Run(task_name, n_fft, str(n_fft), features, name, score(model, dev[n_fft], cols),
                                  time.perf_counter() - t0)
                    runs.append(run)
                    log(f"  {task_name:10s} n_fft {n_fft:4d} {features:4s} {name:6s} {headline(run)}")
    return runs


def pooled(train: dict[int, Table], dev: dict[int, Table], *, sound_clf: str, gender_clf: str,
           done: dict[tuple, Run] | None = None, log=print) -> list[Run]:
    """Train on the tables of all n_fft together, predict with each one (the seed's shortcut)."""
    clfs = classifiers()
    cols = _columns("ours")
    done = done or {}
    runs, both = [], None
    for task_name, make_task, name, score in (("sound_type", sound_task, sound_clf, _score_sound),
                                              ("gender", gender_task, gender_clf, _score_gender)):
        earlier = [done.get((task_name, n, "all", "ours", name)) for n in sorted(dev)]
        if all(earlier):
            runs += earlier
            continue
        if both is None:  # one stacked table serves both tasks
            both = Table(np.vstack([t.X for t in train.values()]),
                         {k: np.concatenate([t.meta[k] for t in train.values()])
                          for k in next(iter(train.values())).meta})
        task = make_task(both)
        t0 = time.perf_counter()
        model = fit_weighted(clone(clfs[name]), task.table.X, task.y, task.weights)
        seconds = time.perf_counter() - t0
        for n_fft in sorted(dev):
            run = Run(task_name, n_fft, "all", "ours", name, score(model, dev[n_fft], cols), seconds)
            runs.append(run)
            log(f"  {task_name:10s} trained on all, n_fft {n_fft:4d} {name:6s} {headline(run)}")
    return runs


def key(run: Run) -> tuple:
    return run.task, run.n_fft, run.train_n_fft, run.features, run.classifier


def load_runs(path) -> dict[tuple, Run]:
    """Runs of an earlier ``experiments`` JSON report, by :func:`key` (empty if there is none)."""
    path = Path(path)
    if not path.is_file():
        return {}
    return {key(r): r for r in (Run(**d) for d in json.loads(path.read_text())["runs"])}


def headline(run: Run) -> str:
    s = run.scores
    if run.task == "sound_type":
        return (f"speech-vs-rest {s['speech_vs_rest_bacc']:.3f}  macro F1 {s['macro_f1']:.3f}  "
                f"music/song->speech {s['music_song_called_speech']:.3f}")
    return f"gender {s['accuracy']:.3f} (F {s['per_gender']['female']:.3f}, M {s['per_gender']['male']:.3f})"
