"""Scores that say how the models do on recordings they have never seen."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score, recall_score

SOUND_LABELS = ["speech", "song", "music", "noise", "nature"]
GENDER_LABELS = ["female", "male"]
FEATURE_SETS = {"seed": "the seed's features", "ours": "our features"}
# The score each task's model is chosen by, and its name in reports.
TASK_KEYS = {"sound_type": ("macro_f1", "macro F1"), "gender": ("balanced_accuracy", "balanced accuracy")}


def speech_vs_rest_scores(y_true: np.ndarray, said_speech: np.ndarray) -> dict:
    """Balanced accuracy of a speech / not-speech call, and music/song windows called speech.

    Parameters
    ----------
    y_true : np.ndarray of str
        True category per window.
    said_speech : np.ndarray of bool
        Whether the detector called the window speech.
    """
    is_speech = y_true == "speech"
    musical = np.isin(y_true, ["music", "song"])
    return {
        "n": int(len(y_true)),
        "speech_vs_rest_bacc": float(balanced_accuracy_score(is_speech, said_speech)),
        "speech_recall": float(said_speech[is_speech].mean()) if is_speech.any() else float("nan"),
        "music_song_called_speech": float(said_speech[musical].mean()) if musical.any() else float("nan"),
    }


def sound_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Speech-vs-rest balanced accuracy, 5-class macro F1, recalls, music/song called speech."""
    recalls = recall_score(y_true, y_pred, labels=SOUND_LABELS, average=None, zero_division=0)
    binary = speech_vs_rest_scores(y_true, y_pred == "speech")
    return {
        "n": binary["n"],
        "speech_vs_rest_bacc": binary["speech_vs_rest_bacc"],
        "macro_f1": float(f1_score(y_true, y_pred, labels=SOUND_LABELS, average="macro", zero_division=0)),
        "recall": {lab: float(r) for lab, r in zip(SOUND_LABELS, recalls)},
        "music_song_called_speech": binary["music_song_called_speech"],
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


def experiments_markdown(runs: list) -> str:
    """The n_fft x classifier x feature-set tables, which n_fft wins on dev, pooled vs matched training."""
    sound = [r for r in runs if r.task == "sound_type" and r.train_n_fft != "all"]
    gender = [r for r in runs if r.task == "gender" and r.train_n_fft != "all"]
    lines = _findings(runs) + ["## Sound type on dev", "",
             "| n_fft | features | classifier | speech-vs-rest bacc | macro F1 | music/song called speech | "
             + " | ".join(f"recall {lab}" for lab in SOUND_LABELS) + " | fit s |",
             "|---" * (7 + len(SOUND_LABELS)) + "|"]
    for r in sound:
        s = r.scores
        lines.append(f"| {r.n_fft} | {r.features} | {r.classifier} | {s['speech_vs_rest_bacc']:.3f} | "
                     f"{s['macro_f1']:.3f} | {s['music_song_called_speech']:.3f} | "
                     + " | ".join(f"{s['recall'][lab]:.3f}" for lab in SOUND_LABELS) + f" | {r.seconds:.0f} |")
    lines += ["", "## Gender on dev speech windows", "",
              "| n_fft | features | classifier | accuracy | female | male | fit s |", "|---" * 7 + "|"]
    for r in gender:
        s = r.scores
        lines.append(f"| {r.n_fft} | {r.features} | {r.classifier} | {s['accuracy']:.3f} | "
                     f"{s['per_gender']['female']:.3f} | {s['per_gender']['male']:.3f} | {r.seconds:.0f} |")
    lines += ["", "## Which n_fft wins on dev", ""]
    for task, (key, label) in TASK_KEYS.items():
        for clf in sorted({r.classifier for r in runs if r.task == task}):
            mine = [r for r in runs if r.task == task and r.classifier == clf and r.features == "ours"
                    and r.train_n_fft != "all"]
            if mine:
                best = max(mine, key=lambda r: r.scores[key])
                spread = ", ".join(f"{r.n_fft}: {r.scores[key]:.3f}" for r in sorted(mine, key=lambda r: r.n_fft))
                lines.append(f"- {task}, {clf}, our features: n_fft **{best.n_fft}** ({label} {spread})")
    pairs = _pooled_pairs(runs)
    if pairs:
        lines += ["", "## Training on all n_fft and predicting with one (the seed's shortcut)", "",
                  "| task | classifier | n_fft at prediction | trained on that n_fft | trained on all | change |",
                  "|---|---|---|---|---|---|"]
        for r, a, b in pairs:
            lines.append(f"| {r.task} | {r.classifier} | {r.n_fft} | {a:.3f} | {b:.3f} | {b - a:+.3f} |")
    return "\n".join(lines) + "\n"


def _pooled_pairs(runs: list) -> list[tuple]:
    """``(pooled run, score trained on that n_fft, score trained on all)`` for each pooled run with a twin."""
    pairs = []
    for r in runs:
        if r.train_n_fft != "all":
            continue
        key = TASK_KEYS[r.task][0]
        same = [m for m in runs if (m.task, m.classifier, m.features, m.train_n_fft) ==
                (r.task, r.classifier, "ours", str(r.n_fft))]
        if same:
            pairs.append((r, same[0].scores[key], r.scores[key]))
    return pairs


def _findings(runs: list) -> list[str]:
    """Best configuration per task and feature set, and the pooled-training change, in a few lines."""
    lines = ["## Findings", ""]
    for task, (key, label) in TASK_KEYS.items():
        for features in ("seed", "ours"):
            mine = [r for r in runs if r.task == task and r.features == features and r.train_n_fft != "all"]
            if mine:
                b = max(mine, key=lambda r: r.scores[key])
                lines.append(f"- {task}, {FEATURE_SETS[features]}: best {label} {b.scores[key]:.3f} "
                             f"({b.classifier}, n_fft {b.n_fft}), worst {min(r.scores[key] for r in mine):.3f}")
    changes = [b - a for _, a, b in _pooled_pairs(runs)]
    if changes:
        lines.append(f"- training on all n_fft and predicting with one changes the score by {min(changes):+.3f} "
                     f"to {max(changes):+.3f} (mean {np.mean(changes):+.3f}) against training on that n_fft")
    return lines + [""]


def peer_markdown(peer) -> str:
    """Silero VAD beside our sound-type model on the same dev windows (empty without a peer)."""
    if peer is None:
        return ""
    lines = ["", "## Silero VAD as a peer for speech-vs-rest", "",
             f"The same {peer.windows} dev windows ({peer.audio_seconds / 60:.0f} min of audio), "
             "scored for both detectors. Silero VAD (ONNX, MIT licence, `pip install \".[bench]\"`) calls a "
             "window speech when the mean of its 32 ms speech probabilities reaches 0.5, its default threshold; "
             "ours calls it speech when speech is the shipped sound model's top class (unsmoothed). Speed: "
             "audio seconds per second of processing on the decoded samples, one file after another in one "
             "process (ours: features at the model's n_fft plus prediction; Silero: its network).", "",
             "| detector | speech-vs-rest bacc | speech recall | music/song called speech | x real time |",
             "|---|---|---|---|---|"]
    for name, label in (("ours", "dramapic-subs sound model"), ("silero", "Silero VAD")):
        s = peer.scores[name]
        lines.append(f"| {label} | {s['speech_vs_rest_bacc']:.3f} | {s['speech_recall']:.3f} | "
                     f"{s['music_song_called_speech']:.3f} | {peer.x_real_time[name]:.0f} |")
    return "\n".join(lines) + "\n"


def experiments_plot(runs: list, path, *, peer=None) -> None:
    """Four panels against n_fft: speech-vs-rest, macro F1, music/song called speech, gender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("sound_type", lambda s: s["speech_vs_rest_bacc"], "speech-vs-rest balanced accuracy"),
              ("sound_type", lambda s: s["macro_f1"], "5-class macro F1"),
              ("sound_type", lambda s: s["music_song_called_speech"], "music/song windows called speech"),
              ("gender", lambda s: s["balanced_accuracy"], "gender balanced accuracy")]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    colour = {clf: f"C{i}" for i, clf in enumerate(sorted({r.classifier for r in runs}))}
    for ax, (task, get, title) in zip(axes, panels):
        for clf in sorted({r.classifier for r in runs}):
            for features, style in (("ours", "-"), ("seed", "--")):
                pts = sorted((r.n_fft, get(r.scores)) for r in runs if r.task == task and r.classifier == clf
                             and r.features == features and r.train_n_fft != "all")
                if pts:
                    ax.plot(*zip(*pts), style, marker="o", color=colour[clf], label=f"{clf} ({features} features)")
        if peer is not None and title.startswith(("speech-vs-rest", "music/song")):
            key = "speech_vs_rest_bacc" if title.startswith("speech") else "music_song_called_speech"
            ax.axhline(peer.scores["silero"][key], color="k", lw=1, ls=":", label="Silero VAD")
        ax.set_xscale("log", base=2)
        ax.set_xticks([512, 1024, 2048, 4096], ["512", "1024", "2048", "4096"])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("n_fft")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Scores on ../shared/data/dev (sources never trained on); solid: our features, dashed: the seed's")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
