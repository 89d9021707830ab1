"""Fit the speaker-change detector of :mod:`dramapic_subs.turns` on the training pool.

Windows of training clips are laid end to end, in pairs of clips by two
different speakers and pairs by the same speaker, as a programme's dialogue
would be; the detector and threshold are those that best tell the true speaker changes
(the first window of the second clip, give or take one window) from the
rest. Only the training pool's speech is used; dev never is.
"""
from __future__ import annotations

import numpy as np

from ..embedding import cosine_distance, embedding_plan, planned_rows, refined_points
from ..turns import CONTEXT, VOICE_COLUMNS, TurnModel, change_scores, split_points
from .fit import Task
from .loco import mix_rows

MIN_WINDOWS = 2 * CONTEXT  # clips shorter than this give no change score inside
# Share of one voice's window pairs (``stride`` apart) that the refinement threshold lets by unrefined:
# each pair over it costs the product one more embedding. At 0.9, on 6 dev programmes (measured once,
# after the rule was set on the training pool's distances): gender per cue 0.931 -> 0.960 against 0.969
# embedding every window.
REFINE_QUANTILE = 0.9


# Detectors compared on the training pairs: columns (a name list, or a name prefix), metric, thresholds.
DETECTORS = {
    "voice columns": (VOICE_COLUMNS, "rms", np.arange(0.3, 2.01, 0.05)),
    "speaker embedding": ("spk", "cosine", np.arange(0.02, 0.61, 0.02)),
}


def fit_turn_model(task: Task, names: list[str], *, stride: int = 1, refine: float | None = None, pairs: int = 3000,
                   seed: int = 0) -> tuple[TurnModel, dict]:
    """Columns, standardisation and threshold from the gender task's rows (original clips, no mixes).

    Each of :data:`DETECTORS` the input has is scored on the same pairs of
    clips; the one with the best F1 at its best threshold is kept. The
    training tables embed every window; the product embeds every
    ``stride``-th one and gives the others the nearest embedding
    (:func:`~dramapic_subs.embedding.embedding_plan`; with ``refine``, also
    the windows between two that differ: :func:`~dramapic_subs.embedding.refined_points`),
    which blunts a change: the pairs' embeddings are thinned the same way before they are scored.

    Returns
    -------
    model : TurnModel
    info : dict
        The chosen detector (``detector``), its threshold (``chosen``), the
        precision, recall and F1 of change detection at each threshold tried
        (``by_threshold``), and each detector's best (``detectors``).
    """
    clean = ~mix_rows(task)
    X = task.table.X[clean]
    clips = _clips(task, clean)
    sequences = _pairs(clips, task.table.meta["speaker"][clean], n=pairs, seed=seed)
    fitted = {}
    for name, (columns, metric, thresholds) in DETECTORS.items():
        wanted = [c for c in names if c.startswith(columns)] if isinstance(columns, str) else list(columns)
        if not wanted or any(c not in names for c in wanted):
            continue
        cols = np.array([names.index(c) for c in wanted])
        if metric == "rms":
            mean, scale = X[:, cols].mean(axis=0), X[:, cols].std(axis=0) + 1e-9
        else:  # a direction: no centring, which would change it
            mean, scale = np.zeros(len(cols)), np.ones(len(cols))
        probe = TurnModel(cols, mean, scale, threshold=0.0, metric=metric)
        rows = (lambda idx: X[idx]) if metric == "rms" else (lambda idx: _as_product(X[idx], cols, stride, refine))
        scored = [(change_scores(rows(idx), probe), boundary) for idx, boundary in sequences]
        results = {round(float(t), 2): _detection(scored, t) for t in thresholds}
        best = max(results, key=lambda t: results[t]["f1"])
        fitted[name] = (TurnModel(cols, mean, scale, threshold=float(best), metric=metric), best, results)
    detector = max(fitted, key=lambda k: fitted[k][2][fitted[k][1]]["f1"])
    model, best, results = fitted[detector]
    return model, {"detector": detector, "chosen": best, "by_threshold": results,
                   "detectors": {k: {"threshold": b, **r[b]} for k, (_, b, r) in fitted.items()}}


def _as_product(X: np.ndarray, cols: np.ndarray, stride: int, refine: float | None = None) -> np.ndarray:
    """``X`` with its embedding columns as the product has them for one voiced run: every
    ``stride``-th window's own (and those ``refine`` adds), the others the nearest one's (the
    normalised mean on a tie)."""
    out = X.copy()
    wanted = np.ones(len(X), bool)
    E = X[:, cols]
    points = refined_points(wanted, E, stride=stride, refine=refine)
    out[:, cols] = planned_rows(E, embedding_plan(wanted, stride=stride, points=points), width=len(cols),
                                 dtype=X.dtype)
    return out


def refine_threshold(task: Task, names: list[str], *, stride: int, quantile: float = REFINE_QUANTILE) -> float:
    """The cosine distance between embeddings of one voice ``stride`` windows apart that ``quantile``
    of such pairs stay under (the training pool's recorded speech, windows of one clip).

    The product embeds every ``stride``-th voiced window; where two such
    neighbours differ by more than this, the voice has probably changed
    between them, and the windows between get their own embeddings rather
    than a neighbour's (one in ten pairs of one voice costs that extra).
    """
    clean = ~mix_rows(task)
    cols = np.array([i for i, n in enumerate(names) if n.startswith("spk")])
    X = task.table.X[clean][:, cols]
    pairs = [(c[:-stride], c[stride:]) for c in _clips(task, clean) if len(c) > stride]
    a = np.concatenate([p for p, _ in pairs])
    b = np.concatenate([q for _, q in pairs])
    voiced = (np.linalg.norm(X[a], axis=1) > 0) & (np.linalg.norm(X[b], axis=1) > 0)
    return round(float(np.quantile(cosine_distance(X[a[voiced]], X[b[voiced]]), quantile)), 4)


def _clips(task: Task, clean: np.ndarray) -> list[np.ndarray]:
    """Row indices (into the clean rows) of each clip long enough to judge, in time order."""
    jobs = task.table.meta["job"][clean]
    starts = np.flatnonzero(np.r_[True, jobs[1:] != jobs[:-1]])
    return [c for c in np.split(np.arange(len(jobs)), starts[1:]) if len(c) >= MIN_WINDOWS]


def _pairs(clips: list[np.ndarray], speakers: np.ndarray, *, n: int, seed: int) -> list[tuple[np.ndarray, int | None]]:
    """Two clips end to end: half by different speakers (boundary index given), half by one (None)."""
    rng = np.random.default_rng(seed)
    by_speaker: dict[str, list[np.ndarray]] = {}
    for c in clips:
        by_speaker.setdefault(str(speakers[c[0]]), []).append(c)
    multi = [s for s, cs in by_speaker.items() if len(cs) >= 2]
    out = []
    for k in range(n):
        if k % 2 == 0 or not multi:
            a, b = rng.choice(len(clips), 2, replace=False)
            if speakers[clips[a][0]] == speakers[clips[b][0]]:
                continue
            out.append((np.concatenate([clips[a], clips[b]]), len(clips[a])))
        else:
            cs = by_speaker[multi[rng.integers(len(multi))]]
            a, b = rng.choice(len(cs), 2, replace=False)
            out.append((np.concatenate([cs[a], cs[b]]), None))
    return out


def _detection(scored: list[tuple[np.ndarray, int | None]], threshold: float) -> dict:
    """Precision and recall of split points against the true changes (one window of slack)."""
    hits = found = truths = 0
    for scores, boundary in scored:
        splits = split_points(scores, threshold=threshold)
        found += len(splits)
        if boundary is not None:
            truths += 1
            hits += bool(np.any(np.abs(splits - boundary) <= 1))
    precision = hits / found if found else 0.0
    recall = hits / truths if truths else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}
