"""Experiment: gender and speaker change from speaker embeddings (``reports/embedding_gender.md``).

Every speech file of the chosen sources is cut into the product's windows
(2 s, 1 s hop; windows quieter than -50 dBFS dropped). Each window gets a
speaker embedding (:mod:`dramapic_subs.embedding`, one centred 1.6 s
partial) and the project's own gender features (n_fft 512). Both are cached
per file under ``~/.cache/dramapic-subs/embeddings`` (keyed by the file's
sha1 and the settings), so an interrupted run resumes where it stopped.

Logistic regressions are fitted on train windows only (each source x gender
cell weighted equally, both genders equal in total; C picked by
leave-one-corpus-out on train) and scored on dev windows, per file (mean
window log-odds) and per speaker, beside the shipped gender model. Dev is
never used to fit or pick anything, thresholds included.

Run from the project's root: ``dramapic-subs-train embedding-gender``.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..embedding import SpeakerEncoder, cosine_distance
from ..errors import ModelError
from ..features import SILENCE_FLOOR_DB, FeatureSpec, featurize
from ..media import read_audio
from ..models import ModelBundle
from ..representations import SpeakerEmbedding, Spectral
from ..windows import make_grid
from .tables import _file_hash, read_manifest

SR = 16000
GENDER_NFFT = 512
TRAIN_SOURCES = ("emotiontts_open_db", "ravdess", "librispeech_resemblyzer", "fsdd")
DEV_SOURCES = ("emotiontts_open_db", "emodb", "librispeech_resemblyzer")
C_GRID = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.1, 1.0)
_CACHE_TAG = "emb-v1-w2.0-h1.0-p1-nfft512"  # bump when windows, encoder use or features change


@dataclass
class Windows:
    """Per-window data of many files, stacked.

    Attributes
    ----------
    emb : np.ndarray, shape (n, 256)
        Speaker embeddings.
    feat : np.ndarray, shape (n, n_features)
        The project's pooled gender features (n_fft 512).
    index : np.ndarray of int, shape (n,)
        Window (cue) index within its file.
    file : np.ndarray of int, shape (n,)
        Row number of the window's file in ``rows``.
    rows : list of dict
        Manifest rows, one per file.
    """

    emb: np.ndarray
    feat: np.ndarray
    index: np.ndarray
    file: np.ndarray
    rows: list[dict]

    def column(self, name: str) -> np.ndarray:
        """A manifest column for every window."""
        return np.array([self.rows[i][name] for i in self.file])

    def subset(self, mask: np.ndarray) -> "Windows":
        return Windows(self.emb[mask], self.feat[mask], self.index[mask], self.file[mask], self.rows)


def speech_rows(data: Path, split: str, sources: tuple[str, ...]) -> list[dict]:
    """Speech files of ``split`` from ``sources``, in manifest order."""
    return [r for r in read_manifest(data, split) if r["category"] == "speech" and r["source"] in sources]


def _cache_path(path: Path, cache: Path) -> Path:
    return cache / f"{_file_hash(path)}-{_CACHE_TAG}.npz"


def _prepare(path: Path, encoder: SpeakerEncoder) -> dict[str, np.ndarray]:
    """Features, cue indices and mel partials of one file's non-silent windows."""
    y = read_audio(path, sr=SR)
    grid = make_grid(sr=SR, window_s=2.0, hop_s=1.0)
    wf = featurize(y, spec=FeatureSpec(GENDER_NFFT), grid=grid)
    keep = wf.level_db >= SILENCE_FLOOR_DB
    spans = [grid.span(int(i), len(y)) for i in wf.index[keep]]
    return {"feat": wf.X[keep].astype(np.float32), "index": wf.index[keep],
            "mels": encoder.span_mels(y, spans)[:, 0]}


def _save(key: Path, entry: dict[str, np.ndarray]) -> None:
    key.parent.mkdir(parents=True, exist_ok=True)
    tmp = key.with_suffix(".tmp.npz")
    np.savez(tmp, **entry)
    tmp.replace(key)  # whole files only: an interrupted run never leaves half a cache entry


def collect(rows: list[dict], data: Path, encoder: SpeakerEncoder, *, cache: Path,
            progress: Callable[[int], None] | None = None, batch: int = 128) -> Windows:
    """Embeddings and features of every non-silent window of ``rows``'s files (cached per file).

    Files missing from the cache are embedded together, ``batch`` windows at
    a time: most files hold a few windows, and one LSTM pass over many is
    cheaper per window than many small passes.
    """
    entries: dict[int, dict[str, np.ndarray]] = {}
    pending: list[tuple[int, dict]] = []

    def flush() -> None:
        if not pending:
            return
        emb = encoder.embed_mels(np.concatenate([p["mels"] for _, p in pending]))
        at = 0
        for k, p in pending:
            n = len(p["mels"])
            entry = {"emb": emb[at:at + n], "feat": p["feat"], "index": p["index"]}
            at += n
            _save(_cache_path(data / rows[k]["path"], cache), entry)
            entries[k] = entry
        pending.clear()

    for k, row in enumerate(rows):
        key = _cache_path(data / row["path"], cache)
        if key.is_file():
            with np.load(key) as npz:
                entries[k] = {name: npz[name] for name in npz.files}
        else:
            pending.append((k, _prepare(data / row["path"], encoder)))
            if sum(len(p["mels"]) for _, p in pending) >= batch:
                flush()
        if progress:
            progress(k + 1)
    flush()
    parts = [entries[k] for k in range(len(rows))]
    return Windows(np.vstack([p["emb"] for p in parts]).astype(np.float32),
                   np.vstack([p["feat"] for p in parts]),
                   np.concatenate([p["index"] for p in parts]),
                   np.concatenate([np.full(len(p["index"]), k) for k, p in enumerate(parts)]), rows)


# --- gender classifiers ---------------------------------------------------------------------

def cell_weights(source: np.ndarray, gender: np.ndarray) -> np.ndarray:
    """Sample weights: every source x gender cell the same total, both genders the same total."""
    w = np.zeros(len(source))
    for g in np.unique(gender):
        cells = {s for s, gg in zip(source, gender) if gg == g}
        for s in cells:
            m = (source == s) & (gender == g)
            w[m] = 1.0 / (m.sum() * len(cells))
    return w * len(w) / w.sum()


def design(win: Windows, kind: str) -> np.ndarray:
    """Input matrix: ``emb`` (embeddings), ``feat`` (project features) or ``emb+feat``."""
    return {"emb": lambda: win.emb, "feat": lambda: win.feat,
            "emb+feat": lambda: np.hstack([win.emb, win.feat])}[kind]()


def fit_logreg(X: np.ndarray, y: np.ndarray, w: np.ndarray, *, C: float):
    """Standardised logistic regression (male = 1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    model.fit(X, y, logisticregression__sample_weight=w)
    return model


def log_odds_male(model, X: np.ndarray) -> np.ndarray:
    """Decision values: log-odds of male (positive: male)."""
    return model.decision_function(X)


def gender_scores(is_male: np.ndarray, male_odds: np.ndarray) -> dict:
    """Accuracy per gender, overall and balanced, for log-odds of male."""
    pred = male_odds > 0
    fem = float((~pred[~is_male]).mean()) if (~is_male).any() else float("nan")
    mal = float(pred[is_male].mean()) if is_male.any() else float("nan")
    return {"n": int(len(pred)), "accuracy": float((pred == is_male).mean()), "female": fem, "male": mal,
            "balanced": float(np.nanmean([fem, mal]))}


def grouped_mean(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique groups and the mean of ``values`` in each."""
    uniq, inv = np.unique(groups, return_inverse=True)
    return uniq, np.bincount(inv, weights=values) / np.bincount(inv)


def evaluate(win: Windows, male_odds: np.ndarray) -> dict:
    """Window, file and speaker scores, per source and language, of log-odds of male on ``win``."""
    is_male = win.column("gender") == "male"
    source, language = win.column("source"), win.column("language")
    out = {"window": gender_scores(is_male, male_odds)}
    files, file_odds = grouped_mean(male_odds, win.file)
    file_male = np.array([win.rows[f]["gender"] == "male" for f in files])
    out["file"] = gender_scores(file_male, file_odds)
    speaker = win.column("speaker")
    wrong = (male_odds > 0) != is_male
    spk, spk_wrong = grouped_mean(wrong.astype(float), speaker)
    spk_gender = {s: g for s, g in zip(speaker, win.column("gender"))}
    out["speakers"] = {"n": int(len(spk)), "wrong_in_most_windows": int((spk_wrong > 0.5).sum()),
                       "wrong_list": sorted(f"{s} ({spk_gender[s]}, {w:.0%})" for s, w in zip(spk, spk_wrong)
                                            if w > 0.5)}
    out["by_source"] = {s: gender_scores(is_male[source == s], male_odds[source == s]) for s in np.unique(source)}
    out["by_language"] = {s: gender_scores(is_male[language == s], male_odds[language == s])
                          for s in np.unique(language)}
    return out


def file_scores_every(win: Windows, male_odds: np.ndarray, *, every: int) -> dict:
    """File scores when only every ``every``-th window is embedded (cue index % every == 0).

    What a cheaper product would see: one partial per ``every`` windows. A
    file whose kept windows all fall between those cues keeps its first one.
    """
    use = win.index % every == 0
    first = np.r_[True, win.file[1:] != win.file[:-1]]
    lacking = ~np.isin(win.file, win.file[use])
    use |= first & lacking
    files, odds = grouped_mean(male_odds[use], win.file[use])
    is_male = np.array([win.rows[f]["gender"] == "male" for f in files])
    return gender_scores(is_male, odds)


def loco(train: Windows, kind: str, *, C: float) -> dict[str, dict]:
    """Leave one corpus out within train: fit on the others, score windows and files of the one left out."""
    source, gender = train.column("source"), train.column("gender")
    X, y = design(train, kind), gender == "male"
    out = {}
    for held in np.unique(source):
        fit_m = source != held
        model = fit_logreg(X[fit_m], y[fit_m], cell_weights(source[fit_m], gender[fit_m]), C=C)
        test = train.subset(~fit_m)
        res = evaluate(test, log_odds_male(model, X[~fit_m]))
        out[str(held)] = {"window": res["window"], "file": res["file"]}
    return out


def pick_C(train: Windows, kind: str) -> tuple[float, dict[float, float]]:
    """C with the best mean LOCO window balanced accuracy on train (fsdd, male only, scored on male accuracy)."""
    scores = {}
    for C in C_GRID:
        res = loco(train, kind, C=C)
        scores[C] = float(np.mean([r["window"]["balanced"] for r in res.values()]))
    return max(scores, key=scores.get), scores


def shipped_odds(bundle: ModelBundle, win: Windows) -> np.ndarray:
    """Log-odds of male from the shipped gender bundle (unsmoothed, as reports/accuracy.md).

    Raises
    ------
    ModelError
        The bundle reads columns this experiment did not compute: it featurizes
        n_fft 512 at hop 128 (and embeds every window), as the gender model
        of its day did; the bundle's inputs must be among those.
    """
    cols = []
    for rep in bundle.inputs:
        if isinstance(rep, Spectral) and rep.spec == FeatureSpec(GENDER_NFFT):
            cols.append(win.feat)
        elif isinstance(rep, SpeakerEmbedding):
            cols.append(win.emb)
        else:
            raise ModelError(f"the embedding experiment has no columns for the {bundle.name} bundle's input "
                             f"{rep.card()}; score it with `dramapic-subs-train evaluate` instead")
    p = bundle.predict_proba(np.hstack(cols))[:, bundle.labels.index("male")]
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


# --- speaker change ----------------------------------------------------------------------------

def change_pairs(win: Windows, *, n_pairs: int, seed: int, context: int = 1) -> dict[str, np.ndarray]:
    """Cosine distances between the non-overlapping audio either side of a point.

    With ``context`` 1, the two 2 s windows either side (i-1 and i+1 around
    cue i); with 2, the mean embedding of two windows each side (i-2, i-1 vs
    i+1, i+2: 3 s each side), steadier but later to react.

    * ``within``: points inside one file (same speaker, same recording);
    * ``same_speaker``: end of one file vs start of another file of the same speaker
      (a cut between two recordings of one voice);
    * ``diff_same_gender`` / ``diff_cross_gender``: the same across speakers of one source
      (a cut between two voices; the source is kept so that only the voice changes).
    """
    rng = np.random.default_rng(seed)
    by_file = defaultdict(list)
    for r, f, i in zip(range(len(win.file)), win.file, win.index):
        by_file[int(f)].append((int(i), r))
    out = {"within": []}
    left_of, right_of = range(-context + 1, 1), range(2, 2 + context)  # cue offsets around the point
    for f, lst in by_file.items():
        pos = {i: r for i, r in lst}
        for i, _ in lst:
            if all(i + d in pos for d in (*left_of, *right_of)):
                out["within"].append(([pos[i + d] for d in left_of], [pos[i + d] for d in right_of]))
    head = {f: [r for _, r in sorted(lst)[:context]] for f, lst in by_file.items()}
    tail = {f: [r for _, r in sorted(lst)[-context:]] for f, lst in by_file.items()}
    files = np.array(sorted(by_file))
    meta = {f: (win.rows[f]["source"], win.rows[f]["speaker"], win.rows[f]["gender"]) for f in files}
    for name in ("same_speaker", "diff_same_gender", "diff_cross_gender"):
        out[name] = []
    for _ in range(n_pairs * 20):
        a, b = rng.choice(files, 2, replace=False)
        (sa, pa, ga), (sb, pb, gb) = meta[a], meta[b]
        if sa != sb:
            continue
        name = "same_speaker" if pa == pb else ("diff_same_gender" if ga == gb else "diff_cross_gender")
        if len(out[name]) < n_pairs:
            out[name].append((tail[a], head[b]))
    # Same-speaker pairs are rare among random draws: draw them per speaker too.
    by_spk = defaultdict(list)
    for f in files:
        by_spk[meta[f][:2]].append(f)
    multi = [v for v in by_spk.values() if len(v) > 1]
    while multi and len(out["same_speaker"]) < n_pairs:
        grp = multi[rng.integers(len(multi))]
        a, b = rng.choice(grp, 2, replace=False)
        out["same_speaker"].append((tail[a], head[b]))
    within = out["within"]
    if len(within) > 4 * n_pairs:
        out["within"] = [within[k] for k in rng.choice(len(within), 4 * n_pairs, replace=False)]
    return {k: _block_distances(win.emb, v) for k, v in out.items()}


def _block_distances(emb: np.ndarray, pairs: list[tuple[list[int], list[int]]]) -> np.ndarray:
    """Cosine distance between the mean embeddings of each pair's two blocks of rows."""
    if not pairs:
        return np.zeros(0)
    left = np.stack([emb[a].mean(axis=0) for a, _ in pairs])
    right = np.stack([emb[b].mean(axis=0) for _, b in pairs])
    return cosine_distance(left, right)


def roc_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    from sklearn.metrics import roc_auc_score

    if not len(pos) or not len(neg):
        return float("nan")
    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def best_threshold(pos: np.ndarray, neg: np.ndarray) -> float:
    """Distance threshold with the best balanced accuracy between change (pos) and no change (neg)."""
    cands = np.unique(np.r_[pos, neg])
    cands = cands[:: max(1, len(cands) // 2000)]
    bacc = [(np.mean(pos > t) + np.mean(neg <= t)) / 2 for t in cands]
    return float(cands[int(np.argmax(bacc))])


def change_scores(d: dict[str, np.ndarray], threshold: float) -> dict:
    """AUCs of change vs no-change pairs, and rates at a threshold."""
    change = np.r_[d["diff_same_gender"], d["diff_cross_gender"]]
    no_change = np.r_[d["within"], d["same_speaker"]]
    return {
        "n": {k: int(len(v)) for k, v in d.items()},
        "median": {k: float(np.median(v)) if len(v) else float("nan") for k, v in d.items()},
        "auc_change_vs_all_same": roc_auc(change, no_change),
        "auc_change_vs_within": roc_auc(change, d["within"]),
        "auc_change_vs_same_speaker_cut": roc_auc(change, d["same_speaker"]),
        "auc_same_gender_change_vs_all_same": roc_auc(d["diff_same_gender"], no_change),
        "threshold": threshold,
        "detected": {k: float(np.mean(v > threshold)) if len(v) else float("nan") for k, v in d.items()},
    }


def save_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, default=float) + "\n", encoding="utf-8")
