"""The accuracy report: dev windows, dev programmes, leave-one-corpus-out, calibration.

Three views of sound the models never trained on, from the mildest to the
harshest: the dev split (other files and speakers of mostly the same
corpora), drama-like programmes built from dev clips and captioned by the
CLI, and leave-one-corpus-out on the training pool (each corpus predicted by
a model fitted without it). Silero VAD's own speech call (its mean chunk
probability over the window >= 0.5) is scored beside ours on the same
windows, read off the same tables.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..models import GENDER, SOUND_TYPE, ModelBundle, calibrate
from ..smoothing import ChangeRule
from ..vad import ACTIVE, VAD_FEATURES
from . import loco
from .calibration import reliability
from .fit import end_to_end_scores, gender_task, joined, smoothing_setting, sound_task
from .report import breakdown, gender_scores, sound_scores, speech_vs_rest_scores
from .tables import VAD, Table

_VAD_MEAN = VAD_FEATURES.index("vad_mean")


def silero_says_speech(tables: dict, rows: np.ndarray | None = None) -> np.ndarray:
    """Silero VAD's call per window: mean chunk probability >= 0.5 (its default threshold)."""
    v = tables[VAD].X[:, _VAD_MEAN]
    return (v if rows is None else v[rows]) >= ACTIVE


def dev_scores(tables: dict, sound: ModelBundle, gender: ModelBundle) -> dict:
    """Window scores of both models on the dev tables, with Silero beside the sound model."""
    t = joined(tables, sound.inputs)
    proba = sound.predict_proba(t.X)
    labels = np.asarray(sound.labels)
    pred = labels[proba.argmax(axis=1)]
    y = t.meta["category"]
    s = sound_scores(y, pred)
    s["by_source"] = breakdown(y, pred, t.meta["source"])
    s["nonspeech_called_speech"] = _called_speech_by_source(y, pred == "speech", t.meta["source"])
    y_idx = label_index(sound.labels, y)
    s["reliability"] = reliability(proba, y_idx)
    s["reliability_uncalibrated"] = reliability(calibrate(proba, temperature=1 / sound.temperature), y_idx)
    s["smoothing"] = smoothing_scores(sound_task(t, sound.inputs), proba, sound)
    silero = silero_says_speech(tables)
    s["silero"] = {**speech_vs_rest_scores(y, silero),
                   "nonspeech_called_speech": _called_speech_by_source(y, silero, t.meta["source"])}
    g_all = joined(tables, gender.inputs)
    gt = g_all.where((g_all.meta["category"] == "speech") & (g_all.meta["gender"] != ""))
    gproba = gender.predict_proba(gt.X)
    glabels = np.asarray(gender.labels)
    gpred = glabels[gproba.argmax(axis=1)]
    g = gender_scores(gt.meta["gender"], gpred)
    g["by_source"] = breakdown(gt.meta["gender"], gpred, gt.meta["source"])
    g["by_language"] = breakdown(gt.meta["gender"], gpred, gt.meta["language"])
    g["reliability"] = reliability(gproba, label_index(gender.labels, gt.meta["gender"]))
    g["reliability_uncalibrated"] = reliability(calibrate(gproba, temperature=1 / gender.temperature),
                                                label_index(gender.labels, gt.meta["gender"]))
    return {"sound_type": s, "gender": g}


def smoothing_scores(task, proba: np.ndarray, bundle: ModelBundle, *, columns_sorted: bool = False) -> dict[str, dict]:
    """Scores of ``task``'s clips laid end to end in random orders (hard cuts between them): unsmoothed
    (``"1"``), smoothed over the bundle's width (``"11"``), and stopping where its change rule says
    (``"11/0.8"``), as :func:`~dramapic_subs.train.fit.choose_smoothing` scores them (nothing is chosen here).

    ``proba``'s columns are the bundle's labels, or with ``columns_sorted`` in sorted label order (fold
    predictions: scikit-learn's ``classes_``)."""
    if bundle.smooth <= 1 or bundle.change is None:
        return {}
    by_name = proba if columns_sorted else proba[:, np.argsort(bundle.labels)]
    return {smoothing_setting(width, r): end_to_end_scores(task, by_name, width=width, rule=r)
            for width, r in _compared(bundle)}


def label_index(labels: list[str], y: np.ndarray) -> np.ndarray:
    """Column of each true label in a model's (not necessarily sorted) label order."""
    return np.array([list(labels).index(v) for v in y])


def _called_speech_by_source(y: np.ndarray, said: np.ndarray, sources: np.ndarray) -> dict[str, dict]:
    """Share of each source's non-speech windows called speech."""
    out = {}
    for src in sorted(set(sources[y != "speech"].tolist())):
        m = (sources == src) & (y != "speech")
        out[src] = {"n": int(m.sum()), "rate": float(said[m].mean())}
    return out


def loco_scores(tables: dict, sound: ModelBundle, gender: ModelBundle, *, cache_dir: Path | None, log=print) -> dict:
    """Out-of-corpus scores of the shipped configurations (cached fold predictions are reused)."""
    from .fit import candidates

    out = {}
    for bundle, make in ((sound, sound_task), (gender, gender_task)):
        task = loco.corpus_groups(make(joined(tables, bundle.inputs), bundle.inputs))
        chosen = bundle.meta.get("selection", {}).get("chosen", "hgb")
        raw = loco.loco_proba(task, candidates()[chosen], name=chosen, cache_dir=cache_dir, log=log)
        ok = loco.scored(task, raw)
        labels = np.unique(task.y)
        proba = raw.copy()
        proba[ok] = calibrate(raw[ok], temperature=bundle.temperature)
        pred = labels[proba[ok].argmax(axis=1)]
        res = task.score(task.y[ok], pred)
        res["per_corpus"] = loco.per_corpus(task, proba)
        y_idx = np.searchsorted(labels, task.y[ok])
        res["reliability"] = reliability(proba[ok], y_idx)
        res["reliability_uncalibrated"] = reliability(raw[ok], y_idx)
        if bundle.name == SOUND_TYPE:
            res["smoothing"] = smoothing_scores(task.where(ok), proba[ok], bundle, columns_sorted=True)
            silero = silero_says_speech(tables, np.flatnonzero(ok))
            for corpus, row in res["per_corpus"].items():
                m = task.groups[ok] == corpus
                nonspeech = m & (task.y[ok] != "speech")
                row["silero_nonspeech_called_speech"] = float(silero[nonspeech].mean()) if nonspeech.any() else None
                speech = m & (task.y[ok] == "speech")
                row["silero_speech_recall"] = float(silero[speech].mean()) if speech.any() else None
            res["silero"] = speech_vs_rest_scores(task.y[ok], silero)
        out[bundle.name] = res
    return out


def markdown(dev: dict, loco_res: dict, sound: ModelBundle, gender: ModelBundle, programmes: dict | None,
             plot_name: str, held_out: dict | None = None) -> str:
    """The report's text."""
    s, g = dev["sound_type"], dev["gender"]
    ls, lg = loco_res[SOUND_TYPE], loco_res[GENDER]
    sel_s, sel_g = sound.meta.get("selection", {}), gender.meta.get("selection", {})
    lines = [
        "# Accuracy on sound the models never trained on",
        "",
        "Generated by `dramapic-subs-train evaluate`. Window level (2 s windows, 1 s hop), silent windows "
        "excluded, no temporal smoothing unless said. Three views, mildest first: **dev** (other files, "
        "speakers and a few other corpora; never trained, tuned or chosen on), **dev programmes** (drama-like "
        "mp4s built from dev clips, captioned by the CLI) and **leave-one-corpus-out** (each training corpus "
        "predicted by a model fitted without it and without the mixes that used it; the models and their "
        "smoothing are chosen on these, their calibration on these and on in-corpus folds, half each). "
        "Silero VAD: its mean chunk probability over the window >= 0.5, on the same windows.",
        "",
        f"Models: sound type `{sel_s.get('chosen', '?')}` on {', '.join(r.card()['kind'] for r in sound.inputs)} "
        f"(n_fft {sound.spec.n_fft}, frame hop {sound.spec.hop}), temperature {sound.temperature:.2f}, smoothing "
        f"{_smoothing_text(sound)}; gender `{sel_g.get('chosen', '?')}` on {', '.join(r.card()['kind'] for r in gender.inputs)} "
        f"(n_fft {gender.spec.n_fft}, frame hop {gender.spec.hop}), temperature "
        f"{gender.temperature:.2f}, smoothing {_smoothing_text(gender)}.",
        *_calibration_lines({"sound type": sel_s, "gender": sel_g}),
        *_smoothing_lines(sound, ls.get("smoothing", {}), s.get("smoothing", {})),
        "",
        "| measure | dev windows | leave-one-corpus-out |",
        "|---|---|---|",
        f"| speech vs rest, balanced accuracy | {s['speech_vs_rest_bacc']:.3f} (Silero {s['silero']['speech_vs_rest_bacc']:.3f}) "
        f"| {ls['speech_vs_rest_bacc']:.3f} (Silero {ls['silero']['speech_vs_rest_bacc']:.3f}) |",
        f"| 5-class macro F1 | {s['macro_f1']:.3f} | {ls['macro_f1']:.3f} |",
        f"| music and song called speech | {s['music_song_called_speech']:.3f} (Silero "
        f"{s['silero']['music_song_called_speech']:.3f}) | {ls['music_song_called_speech']:.3f} (Silero "
        f"{ls['silero']['music_song_called_speech']:.3f}) |",
        f"| gender, balanced accuracy | {g['balanced_accuracy']:.3f} | {lg['balanced_accuracy']:.3f} |",
        f"| gender, female / male | {g['per_gender']['female']:.3f} / {g['per_gender']['male']:.3f} "
        f"| {lg['per_gender']['female']:.3f} / {lg['per_gender']['male']:.3f} |",
        f"| sound type ECE (uncalibrated) | {s['reliability']['ece']:.3f} ({s['reliability_uncalibrated']['ece']:.3f}) "
        f"| {ls['reliability']['ece']:.3f} ({ls['reliability_uncalibrated']['ece']:.3f}) |",
        f"| gender ECE (uncalibrated) | {g['reliability']['ece']:.3f} ({g['reliability_uncalibrated']['ece']:.3f}) "
        f"| {lg['reliability']['ece']:.3f} "
        f"({lg['reliability_uncalibrated']['ece']:.3f}) |",
        "",
        f"![reliability diagrams]({plot_name})",
        "",
        "## Leave-one-corpus-out, per held-out corpus",
        "",
        "Sound type. *called speech*: share of the corpus's non-speech windows captioned speech (ours, and "
        "Silero's on the same windows); *speech kept*: share of its speech windows called speech.",
        "",
        "| held-out corpus | classes | windows | accuracy | non-speech called speech | Silero | speech kept | Silero |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {c} | {'/'.join(r['classes'])} | {r['n']} | {r['accuracy']:.3f} | {_pct(r['nonspeech_called_speech'])} "
          f"| {_pct(r['silero_nonspeech_called_speech'])} | {_pct(r['speech_recall'])} | {_pct(r['silero_speech_recall'])} |"
          for c, r in ls["per_corpus"].items()],
        "",
        "Recall per class: " + ", ".join(f"{k} {v:.3f}" for k, v in ls["recall"].items()),
        "",
        "Gender:",
        "",
        "| held-out corpus | windows | accuracy | per gender |",
        "|---|---|---|---|",
        *[f"| {c} | {r['n']} | {r['accuracy']:.3f} | "
          + ", ".join(f"{k} {v:.3f}" for k, v in r["per_gender"].items()) + " |"
          for c, r in lg["per_corpus"].items()],
        "",
        "Candidates compared out of corpus (pooled over held-out corpora):",
        "",
        "| model | candidate | score |",
        "|---|---|---|",
        *[f"| sound type | {n} | macro F1 {v['macro_f1']:.3f}, speech vs rest {v['speech_vs_rest_bacc']:.3f} |"
          for n, v in sel_s.get("loco", {}).items()],
        *[f"| gender | {n} | balanced accuracy {v['balanced_accuracy']:.3f} |" for n, v in sel_g.get("loco", {}).items()],
        *[f"| sound type | {k} | macro F1 {v['macro_f1']:.3f}, "
          f"speech vs rest {v['speech_vs_rest_bacc']:.3f}, worst held-out corpus's non-speech called speech "
          f"{worst_called_speech(v['per_corpus']):.3f} (with them: {worst_called_speech(ls['per_corpus']):.3f}) |"
          for k, v in sound.meta.get("ablation", {}).items()],
        "",
        "## Dev windows",
        "",
        "Recall per class: " + ", ".join(f"{k} {v:.3f}" for k, v in s["recall"].items()),
        "",
        _confusion(s["confusion"]),
        "",
        "Non-speech windows called speech, per dev source (ours / Silero):",
        "",
        "| source | windows | ours | Silero |",
        "|---|---|---|---|",
        *[f"| {k} | {v['n']} | {v['rate']:.3f} | {s['silero']['nonspeech_called_speech'][k]['rate']:.3f} |"
          for k, v in s["nonspeech_called_speech"].items()],
        "",
        "Sound type, accuracy per dev source:",
        "",
        "| source | windows | accuracy |",
        "|---|---|---|",
        *[f"| {k} | {v['n']} | {v['accuracy']:.3f} |" for k, v in s["by_source"].items()],
        "",
        "Gender, accuracy per source and language:",
        "",
        "| group | windows | accuracy |",
        "|---|---|---|",
        *[f"| {k} | {v['n']} | {v['accuracy']:.3f} |" for k, v in {**g["by_source"], **g["by_language"]}.items()],
        "",
    ]
    if programmes:
        lines += _programme_lines(programmes)
    if held_out:
        lines += _held_out_lines(held_out)
    return "\n".join(lines)


def _programme_lines(p: dict) -> list[str]:
    ps, pg = p["sound_type"], p["gender"]
    return [
        "## Drama-like programmes through the whole CLI",
        "",
        f"{p['programmes']} programmes of ~{p['seconds_each']:.0f} s built from dev clips "
        "(`dramapic_subs/train/programmes.py`): dialogue between a female and a male voice, a voice over a "
        "music or noise bed at 5-15 dB SNR, music, song and ambience scenes, hard cuts and silences; muxed "
        "into mp4, captioned by `dramapic-subs --format json` (with its smoothing), each cue scored against "
        "the segment under its centre (cues in silences left out, a clip's own silent lead-in and tail "
        "included; cues next to a cut count too).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| cues scored | {ps['n']} |",
        f"| speech-vs-rest balanced accuracy | {ps['speech_vs_rest_bacc']:.3f} |",
        f"| 5-class macro F1 | {ps['macro_f1']:.3f} |",
        f"| music and song cues called speech | {ps['music_song_called_speech']:.3f} |",
        f"| gender accuracy on speech cues | {pg['accuracy']:.3f} (female {pg['per_gender']['female']:.3f}, "
        f"male {pg['per_gender']['male']:.3f}) |",
        *[f"| ... {what} | {p[key]['accuracy']:.3f} ({p[key]['n']} cues) |"
          for key, what in (("gender_over_beds", "speech over a music or noise bed"),
                            ("gender_without_beds", "dialogue (no bed)")) if key in p],
        "",
        _confusion(ps["confusion"]),
        "",
    ]


def _held_out_lines(held_out: dict) -> list[str]:
    first = next(iter(held_out.values()))
    return [
        "## Programmes from a held-out corpus",
        "",
        f"{first['programmes']} programmes of ~{first['seconds_each']:.0f} s per corpus, built as above but from "
        "training clips, the voices all from one corpus, captioned by the CLI with the gender model refitted "
        "without that corpus (`score_held_out_programmes`). The sound model did train on these clips, so only "
        "the gender columns are out of corpus.",
        "",
        "| held-out corpus | speech cues | gender | over a bed | dialogue |",
        "|---|---|---|---|---|",
        *[f"| {c} | {p['gender']['n']} | {p['gender']['accuracy']:.3f} | {p['gender_over_beds']['accuracy']:.3f} "
          f"| {p['gender_without_beds']['accuracy']:.3f} |" for c, p in held_out.items()],
        "",
    ]


def _confusion(confusion: list[list[int]]) -> str:
    from .report import SOUND_LABELS, confusion_markdown

    return confusion_markdown(confusion, SOUND_LABELS)


def worst_called_speech(per_corpus: dict) -> float:
    """The largest share of a held-out corpus's non-speech windows called speech."""
    rates = [r["nonspeech_called_speech"] for r in per_corpus.values() if r.get("nonspeech_called_speech") is not None]
    return max(rates, default=float("nan"))


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def _compared(bundle: ModelBundle) -> list[tuple[int, ChangeRule | None]]:
    """The smoothings the report compares, as (width, change rule): none, the bundle's width over the
    whole run, and the bundle's width stopping where its rule says."""
    return [(1, None), (bundle.smooth, None), (bundle.smooth, bundle.change)]


def _smoothing_text(bundle: ModelBundle) -> str:
    if bundle.change is None or bundle.smooth <= 1:
        return str(bundle.smooth)
    return f"{bundle.smooth} windows, stopping where the sound changes (threshold {bundle.change.threshold:g})"


def _smoothing_lines(bundle: ModelBundle, loco_scores: dict, dev_scores: dict) -> list[str]:
    """How much the sound model's smoothing brings, on clips laid end to end with hard cuts between them."""
    w = bundle.smooth
    if w <= 1 or bundle.change is None:
        return []
    lines = ["", "Smoothing, as the CLI smooths (the window-level tables here are unsmoothed): clips laid end to end "
             "in random orders with hard cuts between them (5 orders, mean). The setting was chosen out of corpus "
             "by macro F1; dev was not looked at.", "",
             "| view | setting | macro F1 | speech vs rest | music and song called speech |", "|---|---|---|---|---|"]
    names = {smoothing_setting(width, r): text for (width, r), text in
             zip(_compared(bundle), ("none", f"{w} windows", f"{w} windows, stopping at changes"))}
    for view, sc in (("out of corpus", loco_scores), ("dev", dev_scores)):
        if all(k in sc for k in names):
            lines += [f"| {view} | {names[k]} | {sc[k]['macro_f1']:.3f} | {sc[k]['speech_vs_rest_bacc']:.3f} "
                      f"| {sc[k]['music_song_called_speech']:.3f} |" for k in names]
    return lines


def _calibration_lines(selections: dict[str, dict]) -> list[str]:
    """How each model's temperature was fitted: each view's own temperature, and the shared one's ECE in each."""
    lines = []
    for name, sel in selections.items():
        views = sel.get("calibration_views")
        if not views:
            continue
        own, ece = views["temperature_by_view"], views["ece_by_view"]
        lines.append(f"Temperature of the {name} model: fitted on out-of-corpus and in-corpus folds (GroupKFold "
                     f"over speakers and files), half each; alone they would give {own['out_of_corpus']:.2f} and "
                     f"{own['in_corpus']:.2f}; ECE with the shared one {ece['out_of_corpus']:.3f} out of corpus, "
                     f"{ece['in_corpus']:.3f} in corpus.")
    return ["", *lines] if lines else []


def reliability_curves(dev: dict, loco_res: dict) -> dict[str, dict]:
    """The curves of the report's reliability diagram, keyed ``model:view``."""
    out = {}
    for model in (SOUND_TYPE, GENDER):
        out[f"{model}:dev"] = dev[model]["reliability"]
        out[f"{model}:out of corpus"] = loco_res[model]["reliability"]
        out[f"{model}:out of corpus, uncalibrated"] = loco_res[model]["reliability_uncalibrated"]
    return out


__all__ = ["dev_scores", "loco_scores", "markdown", "reliability_curves", "Table"]
