"""Scores that say how the models do on recordings they have never seen."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score, recall_score

SOUND_LABELS = ["speech", "song", "music", "noise", "nature"]
GENDER_LABELS = ["female", "male"]


def sound_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Speech-vs-rest balanced accuracy, 5-class macro F1, recalls, music/song called speech."""
    is_speech, said_speech = y_true == "speech", y_pred == "speech"
    musical = np.isin(y_true, ["music", "song"])
    recalls = recall_score(y_true, y_pred, labels=SOUND_LABELS, average=None, zero_division=0)
    return {
        "n": int(len(y_true)),
        "speech_vs_rest_bacc": float(balanced_accuracy_score(is_speech, said_speech)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=SOUND_LABELS, average="macro", zero_division=0)),
        "recall": {lab: float(r) for lab, r in zip(SOUND_LABELS, recalls)},
        "music_song_called_speech": float(said_speech[musical].mean()) if musical.any() else float("nan"),
        "confusion": confusion_matrix(y_true, y_pred, labels=SOUND_LABELS).tolist(),
    }


def gender_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy overall and per gender (on speech windows)."""
    per = {g: float((y_pred[y_true == g] == g).mean()) if (y_true == g).any() else float("nan")
           for g in GENDER_LABELS}
    return {"n": int(len(y_true)), "accuracy": float((y_true == y_pred).mean()) if len(y_true) else float("nan"),
            "balanced_accuracy": float(np.nanmean(list(per.values()))), "per_gender": per}


def breakdown(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> dict[str, dict]:
    """Accuracy and size per group (source, language, ...), to show weak corpora."""
    out = {}
    for g in sorted(set(groups.tolist())):
        m = groups == g
        out[g] = {"n": int(m.sum()), "accuracy": float((y_true[m] == y_pred[m]).mean())}
    return out


def confusion_markdown(confusion: list[list[int]], labels: list[str]) -> str:
    """A confusion matrix as a Markdown table (rows: truth, columns: prediction)."""
    lines = ["| truth \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for lab, row in zip(labels, confusion):
        lines.append(f"| {lab} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)
