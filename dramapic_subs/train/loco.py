"""Leave-one-corpus-out: every corpus predicted by a model that never heard it.

Dev shares too much with train (the same corpora, other files) to show how
a model does on sound from elsewhere. Here each corpus of the training pool
is held out in turn: the model is fitted on the others, with every
augmentation mix that used the corpus (as speech or as bed) left out as
well, and all of the corpus's original windows are predicted. The
out-of-corpus probabilities choose the estimator and the smoothing, and the
report quotes them per corpus; the calibration takes them half and half with
in-corpus folds (other recordings of heard corpora, :func:`in_corpus_proba`).

Each fold's predictions are cached on disk under a key made of the
estimator, the rows and the labels, so a re-run (or ``evaluate`` after
``fit``) resumes instead of refitting.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from ..models import calibrate
from .fit import Task, corpus_of, fit_weighted
from .tables import save_array


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
        pred = _predict_labels(model, task.table.X[test], labels)
        proba[test] = pred
        if path is not None:
            save_array(path, pred)
        log(f"  {task.name} {name}: held out {corpus} ({int(test.sum())} windows)")
    return proba


def in_corpus_proba(task: Task, est: Pipeline, *, name: str, cache_dir: Path | None, n_splits: int = 5,
                    log: Callable[[str], None] = print) -> np.ndarray:
    """Out-of-fold probabilities from corpora the model has heard: shape (n_rows, n_labels); NaN on mix rows.

    ``GroupKFold`` over the manifest's ``speaker`` column (speaker for speech,
    singer for MIR-1K, class or file for the other sources), so a fold
    predicts other recordings and voices of corpora it trained on, which is
    what dev and most everyday input are. Mixes train in every fold that
    holds their speaker out of test, and are not scored.
    """
    from sklearn.model_selection import GroupKFold

    labels = np.unique(task.y)
    proba = np.full((len(task.y), len(labels)), np.nan)
    mixes = mix_rows(task)
    path = cache_dir / f"heard-{task.name}-{name}-{n_splits}-{_fingerprint(task, est)}.npy" if cache_dir else None
    if path is not None and path.is_file():
        return np.load(path)
    folds = GroupKFold(n_splits=n_splits).split(task.table.X, task.y, task.table.meta["speaker"])
    for k, (train, test) in enumerate(folds):
        model = fit_weighted(clone(est), task.table.X[train], task.y[train], task.weights[train])
        test = test[~mixes[test]]
        proba[test] = _predict_labels(model, task.table.X[test], labels)
        log(f"  {task.name} {name}: heard-corpus fold {k + 1} of {n_splits}")
    if path is not None:
        save_array(path, proba)
    return proba


def _predict_labels(model: Pipeline, X: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``model``'s probabilities in a column per label of the whole task, shape (len(X), len(labels)).

    A fold may lack a class (fsdd is all male): its column stays 0.
    """
    pred = np.zeros((len(X), len(labels)))
    pred[:, np.searchsorted(labels, model.classes_)] = model.predict_proba(X)
    return pred


def two_view_temperature(task: Task, unheard: np.ndarray, heard: np.ndarray) -> tuple[float, dict]:
    """One temperature for sound from corpora the model never heard and from ones it did, half each.

    Fitted on leave-one-corpus-out predictions alone, the sound model came out
    under-confident on dev (ECE 0.056 at T 2.44), whose sources mostly are
    training corpora; fitted on in-corpus folds alone (T 1.94) it is
    over-confident out of corpus (ECE ~0.06). Users meet both, so each view
    weighs half in the likelihood, whatever its number of windows.

    Returns
    -------
    temperature : float
    info : dict
        Each view's own temperature and the calibration error of the shared one in each view.
    """
    from .calibration import fit_temperature, reliability

    labels = np.unique(task.y)
    views = {"out_of_corpus": unheard, "in_corpus": heard}
    rows = {k: scored(task, p) for k, p in views.items()}
    y_idx = {k: np.searchsorted(labels, task.y[m]) for k, m in rows.items()}
    proba = np.vstack([views[k][rows[k]] for k in views])
    weights = np.concatenate([np.full(len(y_idx[k]), 0.5 / len(y_idx[k])) for k in views])
    temperature = fit_temperature(proba, np.concatenate([y_idx[k] for k in views]), weights=weights)
    info = {"temperature_by_view": {k: fit_temperature(views[k][rows[k]], y_idx[k]) for k in views},
            "ece_by_view": {k: reliability(calibrate(views[k][rows[k]], temperature=temperature), y_idx[k])["ece"]
                            for k in views}}
    return temperature, info


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
    h.update(np.ascontiguousarray(task.weights, dtype=np.float64).tobytes())  # a fold fitted with other weights is another fold
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
    """Choose the estimator and smoothing on out-of-corpus predictions, the temperature on those and on
    in-corpus folds (:func:`two_view_temperature`); fit the winner on all rows.

    Returns
    -------
    model : Pipeline
        The winner, fitted on every row.
    info : dict
        ``chosen``, ``loco`` (each candidate's pooled scores), ``per_corpus``
        (the winner's), ``temperature``, ``calibration_views``, ``smooth``,
        ``smooth_change`` (a :class:`~dramapic_subs.smoothing.ChangeRule`'s card, or None),
        ``smoothing_loco`` and ``reliability`` (out of corpus, ``before``/``after`` calibration).
    """
    from .calibration import reliability
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
    heard = in_corpus_proba(task, cands[best], name=best, cache_dir=cache_dir, log=log)
    temperature, views = two_view_temperature(task, probas[best], heard)
    calibrated = calibrate(probas[best][ok], temperature=temperature)
    smooth, change, by_setting = choose_smoothing(task.where(ok), calibrated)
    stops = f", stopping where the sound changes by {change.threshold:g}" if change is not None else ""
    log(f"  {task.name}: chose {best}, temperature {temperature:.2f}, smoothing width {smooth}{stops}")
    model = fit_weighted(clone(cands[best]), task.table.X, task.y, task.weights)
    info = {"chosen": best, "loco": scores, "per_corpus": per_corpus(task, probas[best]),
            "temperature": temperature, "calibration_views": views, "smooth": smooth,
            "smooth_change": change.card() if change is not None else None, "smoothing_loco": by_setting,
            "reliability": {"before": reliability(probas[best][ok], y_idx),
                            "after": reliability(calibrated, y_idx)}}
    return model, info
