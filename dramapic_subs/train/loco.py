"""Leave-one-corpus-out: every corpus predicted by a model that never heard it.

Dev shares too much with train (the same corpora, other files) to show how
a model does on sound from elsewhere. Here each corpus of the training pool
is held out in turn: the model is fitted on the others, with every
augmentation mix that used the corpus (as speech or as bed) left out as
well, and all of the corpus's original windows are predicted. The
out-of-corpus probabilities choose the estimator, the smoothing and the
calibration, and the report quotes them per corpus.

Each fold's predictions are cached on disk under a key made of the
estimator, the rows and the labels, so a re-run (or ``evaluate`` after
``fit``) resumes instead of refitting.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ..models import calibrate
from .fit import Task, corpus_of, fit_weighted


def mix_rows(task: Task) -> np.ndarray:
    """Rows of augmentation mixes (not scored: they are not recordings of the held-out corpus)."""
    return np.char.startswith(task.table.meta["aug"].astype(str), "mix")


def bed_corpora(task: Task) -> np.ndarray:
    """Corpus of each row's bed ('' for rows that are not mixes)."""
    return np.array([corpus_of(b) if b else "" for b in task.table.meta["bed"]])


def loco_proba(task: Task, est: Pipeline, *, name: str, cache_dir: Path | None,
               log: Callable[[str], None] = print, first: tuple[str, ...] = (),
               only: tuple[str, ...] | None = None) -> np.ndarray:
    """Out-of-corpus probabilities, shape (n_rows, n_labels); NaN on mix rows.

    Parameters
    ----------
    task : Task
        Its ``groups`` must be corpora (see :func:`corpus_groups`).
    name : str
        The candidate's name, for the log and the cache key.
    first : tuple of str
        Corpora whose folds run before the others (the same folds and cache either way).
    only : tuple of str or None
        Run only these corpora's folds (the others' rows stay NaN): for a quick look, never for a choice.
    """
    labels = np.unique(task.y)
    proba = np.full((len(task.y), len(labels)), np.nan)
    mixes, beds = mix_rows(task), bed_corpora(task)
    fingerprint = _fingerprint(task, est)
    corpora = [c for c in np.unique(task.groups) if only is None or c in only]
    for corpus in [c for c in first if c in corpora] + [c for c in corpora if c not in first]:
        test = (task.groups == corpus) & ~mixes
        if not test.any():
            continue
        path = cache_dir / f"loco-{task.name}-{name}-{corpus}-{fingerprint}.npy" if cache_dir else None
        if path is not None and path.is_file():
            proba[test] = np.load(path)
            continue
        model = fit_without(task, est, corpus, beds=beds)
        pred = np.zeros((int(test.sum()), len(labels)))
        # A fold may lack a class (fsdd is all male): its column stays 0.
        pred[:, np.searchsorted(labels, model.classes_)] = model.predict_proba(task.table.X[test])
        proba[test] = pred
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, pred)
            os.replace(tmp, path)
        log(f"  {task.name} {name}: held out {corpus} ({int(test.sum())} windows)")
    return proba


def fit_without(task: Task, est: Pipeline, corpus: str, *, beds: np.ndarray | None = None) -> Pipeline:
    """A fresh copy of ``est`` fitted on every row but ``corpus``'s and the mixes that used it as bed.

    ``beds``: :func:`bed_corpora` of the task, if already at hand.
    """
    beds = bed_corpora(task) if beds is None else beds
    train = (task.groups != corpus) & (beds != corpus)
    return fit_weighted(clone(est), task.table.X[train], task.y[train], task.weights[train])


def corpus_groups(task: Task) -> Task:
    """The same task grouped by corpus (the gender task is grouped by speaker for its CV)."""
    groups = np.array([corpus_of(s) for s in task.table.meta["source"]])
    return Task(task.name, task.table, task.y, groups, task.weights, task.score, task.key, task.inputs)


def scored(task: Task, proba: np.ndarray) -> np.ndarray:
    """Rows that carry an out-of-corpus prediction."""
    return ~np.isnan(proba).any(axis=1)


def per_corpus(task: Task, proba: np.ndarray) -> dict[str, dict]:
    """Per held-out corpus: windows, accuracy, and for sound type how much of it was called speech."""
    labels = np.unique(task.y)
    ok = scored(task, proba)
    pred = np.full(len(task.y), "", dtype=object)
    pred[ok] = labels[proba[ok].argmax(axis=1)]
    out = {}
    for corpus in np.unique(task.groups[ok]):
        m = ok & (task.groups == corpus)
        row = {"n": int(m.sum()), "classes": sorted(set(task.y[m].tolist())),
               "accuracy": float((pred[m] == task.y[m]).mean())}
        if task.name == "sound_type":
            nonspeech = m & (task.y != "speech")
            speech = m & (task.y == "speech")
            row["nonspeech_called_speech"] = float((pred[nonspeech] == "speech").mean()) if nonspeech.any() else None
            row["speech_recall"] = float((pred[speech] == "speech").mean()) if speech.any() else None
        else:
            row["per_gender"] = {g: float((pred[m & (task.y == g)] == g).mean())
                                 for g in labels if (m & (task.y == g)).any()}
        out[str(corpus)] = row
    return out


def _fingerprint(task: Task, est: Pipeline) -> str:
    h = hashlib.sha1()
    h.update(repr(est).encode())
    h.update(str(task.table.X.shape).encode())
    h.update(np.ascontiguousarray(task.table.X[::97]).tobytes())  # a sample of rows: cheap, and catches new features
    h.update("|".join(task.y.tolist()).encode())
    h.update("|".join(task.table.meta["aug"].tolist()).encode())
    return h.hexdigest()[:16]


def loco_summary(task: Task, name: str, *, cache_dir: Path | None, log: Callable[[str], None] = print) -> dict:
    """Pooled out-of-corpus scores and per-corpus rows of one candidate (for comparisons in the report)."""
    from .fit import candidates

    task = corpus_groups(task)
    proba = loco_proba(task, candidates()[name], name=name, cache_dir=cache_dir, log=log)
    ok = scored(task, proba)
    labels = np.unique(task.y)
    return {**task.score(task.y[ok], labels[proba[ok].argmax(axis=1)]), "per_corpus": per_corpus(task, proba)}


def select_and_fit(task: Task, *, names: list[str], cache_dir: Path | None,
                   log: Callable[[str], None] = print) -> tuple[Pipeline, dict]:
    """Choose the estimator, smoothing and temperature on out-of-corpus predictions; fit it on all rows.

    Returns
    -------
    model : Pipeline
        The winner, fitted on every row.
    info : dict
        ``chosen``, ``loco`` (each candidate's pooled scores), ``per_corpus``
        (the winner's), ``temperature``, ``smooth``, ``smoothing_loco`` and
        ``reliability`` (``before``/``after`` calibration).
    """
    from .calibration import fit_temperature, reliability
    from .fit import candidates, choose_smoothing

    task = corpus_groups(task)
    cands = candidates()
    labels = np.unique(task.y)
    scores, probas = {}, {}
    for name in names:
        probas[name] = loco_proba(task, cands[name], name=name, cache_dir=cache_dir, log=log)
        ok = scored(task, probas[name])
        scores[name] = task.score(task.y[ok], labels[probas[name][ok].argmax(axis=1)])
        log(f"  {task.name} {name}: out-of-corpus {task.key}={scores[name][task.key]:.3f}")
    best = max(names, key=lambda n: scores[n][task.key])
    ok = scored(task, probas[best])
    y_idx = np.searchsorted(labels, task.y[ok])
    # Unweighted, as the calibration error counts windows: every window's percentage should mean what it says.
    temperature = fit_temperature(probas[best][ok], y_idx)
    calibrated = calibrate(probas[best][ok], temperature=temperature)
    sub = Task(task.name, task.table.where(ok), task.y[ok], task.groups[ok], task.weights[ok], task.score,
               task.key, task.inputs)
    smooth, by_width = choose_smoothing(sub, calibrated)
    log(f"  {task.name}: chose {best}, temperature {temperature:.2f}, smoothing width {smooth}")
    model = fit_weighted(clone(cands[best]), task.table.X, task.y, task.weights)
    info = {"chosen": best, "loco": scores, "per_corpus": per_corpus(task, probas[best]),
            "temperature": temperature, "smooth": smooth, "smoothing_loco": by_width,
            "reliability": {"before": reliability(probas[best][ok], y_idx),
                            "after": reliability(calibrated, y_idx)}}
    return model, info
