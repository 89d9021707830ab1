"""``dramapic-subs-train``: rebuild the shipped models and their dev report.

    dramapic-subs-train fit       # ../shared/data/train -> models/
    dramapic-subs-train evaluate  # models/ on ../shared/data/dev -> reports/dev.md
    dramapic-subs-train experiments  # n_fft x classifier x features, Silero VAD -> reports/experiments.md
    dramapic-subs-train export-encoder    # resemblyzer wheel (torch) -> models/speaker_encoder.npz
    dramapic-subs-train embedding-gender  # gender and speaker change from embeddings -> reports/embedding_gender.md
"""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import typer

from ..features import FeatureSpec
from ..models import GENDER, SOUND_TYPE, ModelBundle, load_bundle, save_bundle
from ..progress import Progress
from . import fit as fitting
from .report import GENDER_LABELS, SOUND_LABELS, breakdown, confusion_markdown, gender_scores, sound_scores
from .tables import Table, build_tables, plan_jobs, read_manifest

# Run from the project's root: the data lies beside it, models/ and reports/ in it.
DEFAULT_DATA = Path(os.environ.get("DRAMAPIC_DATA", "../shared/data"))
DEFAULT_MODELS = Path("models")
DEFAULT_REPORT = Path("reports") / "dev.md"
DEFAULT_CACHE = Path.home() / ".cache" / "dramapic-subs" / "tables"
SOUND_NFFT, GENDER_NFFT = 1024, 512
VERSION = "0.1.0"

app = typer.Typer(add_completion=False, help=__doc__)


def _tables(data: Path, split: str, *, mixes: int, jobs: int, cache: Path | None, quiet: bool,
            n_ffts: tuple[int, ...] = (GENDER_NFFT, SOUND_NFFT)) -> tuple[dict[int, Table], float, list[dict]]:
    rows = read_manifest(data, split)
    plan = plan_jobs(rows, augment_mixes=mixes)
    specs = [FeatureSpec(n) for n in n_ffts]
    t0 = time.perf_counter()
    with Progress(quiet=quiet) as progress:
        task = progress.task(f"features ({split})", total=len(plan))
        tables = build_tables(plan, data_dir=data, specs=specs, cache_dir=cache, n_jobs=jobs,
                              progress=lambda done: progress.update(task, done))
    return tables, time.perf_counter() - t0, rows


def _data_summary(rows: list[dict]) -> dict:
    by_source: dict[str, dict] = defaultdict(lambda: {"files": 0, "minutes": 0.0, "categories": set(), "license": ""})
    for r in rows:
        s = by_source[r["source"]]
        s["files"] += 1
        s["minutes"] += float(r["duration_s"]) / 60
        s["categories"].add(r["category"])
        s["license"] = r["license"]
    return {k: {**v, "minutes": round(v["minutes"], 1), "categories": sorted(v["categories"])}
            for k, v in sorted(by_source.items())}


@app.command("fit")
def fit_cmd(
    data: Path = typer.Option(DEFAULT_DATA, help="Folder with manifest.csv and train/."),
    out: Path = typer.Option(DEFAULT_MODELS, help="Where the model bundles go."),
    cache: Path = typer.Option(DEFAULT_CACHE, help="Feature cache (keyed by file hash and settings)."),
    mixes: int = typer.Option(3000, help="Speech-over-bed augmentation mixes."),
    jobs: int = typer.Option(-1, help="Parallel workers (joblib; -1: all cores)."),
    candidates: str = typer.Option("hgb,logreg,mlp,vote", help="Estimators compared on grouped CV."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Build the training tables, pick each model on grouped CV and write models/."""
    tables, seconds, rows = _tables(data, "train", mixes=mixes, jobs=jobs, cache=cache, quiet=quiet)
    n_rows = sum(len(t) for t in tables.values())
    typer.echo(f"tables: {n_rows} window rows in {seconds:.0f} s ({n_rows / max(seconds, 1e-9):.0f} rows/s)")
    summary = {"training_data": _data_summary(rows), "augmentation_mixes": mixes,
               "versions": fitting.versions(), "version": VERSION}
    names = [c.strip() for c in candidates.split(",") if c.strip()]
    for task, nfft in ((fitting.sound_task(tables[SOUND_NFFT]), SOUND_NFFT),
                       (fitting.gender_task(tables[GENDER_NFFT]), GENDER_NFFT)):
        model, cv = fitting.select_and_fit(task, names=names, log=typer.echo)
        labels = SOUND_LABELS if task.name == SOUND_TYPE else GENDER_LABELS
        bundle = ModelBundle(task.name, model, labels, FeatureSpec(nfft), smooth=cv["smooth"],
                             meta={**summary, "grouped_cv": _jsonable(cv), "train_windows": len(task.y)})
        path = save_bundle(bundle, out)
        typer.echo(f"wrote {path} ({cv['chosen']})")


@app.command("evaluate")
def evaluate_cmd(
    data: Path = typer.Option(DEFAULT_DATA, help="Folder with manifest.csv and dev/."),
    models: Path = typer.Option(DEFAULT_MODELS, help="Model bundles to score."),
    cache: Path = typer.Option(DEFAULT_CACHE),
    report: Path = typer.Option(DEFAULT_REPORT, help="Markdown report to write."),
    jobs: int = typer.Option(-1),
    programmes: int = typer.Option(6, help="Drama-like programmes built from dev clips and run through the CLI."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Score the models on the dev split (other sources, never trained on)."""
    from .programmes import score_programmes

    tables, _, rows = _tables(data, "dev", mixes=0, jobs=jobs, cache=cache, quiet=quiet)
    sound = load_bundle(SOUND_TYPE, directory=models)
    gender = load_bundle(GENDER, directory=models)
    t = tables[sound.spec.n_fft]
    pred = np.asarray(sound.labels)[sound.predict_proba(t.X).argmax(axis=1)]
    s = sound_scores(t.meta["category"], pred)
    s["by_source"] = breakdown(t.meta["category"], pred, t.meta["source"])
    gt = tables[gender.spec.n_fft]
    gt = gt.where((gt.meta["category"] == "speech") & (gt.meta["gender"] != ""))
    gpred = np.asarray(gender.labels)[gender.predict_proba(gt.X).argmax(axis=1)]
    g = gender_scores(gt.meta["gender"], gpred)
    g["by_source"] = breakdown(gt.meta["gender"], gpred, gt.meta["source"])
    g["by_language"] = breakdown(gt.meta["gender"], gpred, gt.meta["language"])
    results = {"sound_type": s, "gender": g}
    if programmes:
        results["programmes"] = score_programmes(rows, data, count=programmes, seconds=180.0, log=typer.echo)
    report.parent.mkdir(parents=True, exist_ok=True)
    report.with_suffix(".json").write_text(json.dumps(_jsonable(results), indent=1) + "\n")
    report.write_text(_markdown(results, sound, gender))
    typer.echo(f"speech-vs-rest balanced accuracy {s['speech_vs_rest_bacc']:.3f}, macro F1 {s['macro_f1']:.3f}, "
               f"music/song called speech {s['music_song_called_speech']:.3f}, gender accuracy "
               f"{g['accuracy']:.3f} (female {g['per_gender']['female']:.3f}, male {g['per_gender']['male']:.3f})")
    typer.echo(f"wrote {report}")


@app.command("experiments")
def experiments_cmd(
    data: Path = typer.Option(DEFAULT_DATA, help="Folder with manifest.csv, train/ and dev/."),
    cache: Path = typer.Option(DEFAULT_CACHE),
    out: Path = typer.Option(Path("reports") / "experiments.md", help="Markdown report (with .json and .png beside)."),
    mixes: int = typer.Option(3000, help="Speech-over-bed augmentation mixes in the train tables."),
    n_fft: str = typer.Option("512,1024,2048,4096", help="FFT sizes to compare."),
    classifiers: str = typer.Option("tree,forest,logreg,hgb", help="Classifiers to compare."),
    models: Path = typer.Option(DEFAULT_MODELS, help="Shipped bundles, compared with Silero VAD."),
    reuse: bool = typer.Option(False, help="Take the n_fft x classifier runs already in the report's JSON "
                                            "(same data and code) instead of fitting them again."),
    jobs: int = typer.Option(-1),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """The seed's experiment across sources: every n_fft x classifier x feature set, scored on dev."""
    from . import experiments as exp
    from .report import experiments_markdown, experiments_plot, peer_markdown

    sizes = tuple(int(n) for n in n_fft.split(","))
    train, seconds, _ = _tables(data, "train", mixes=mixes, jobs=jobs, cache=cache, quiet=quiet, n_ffts=sizes)
    rows = sum(len(t) for t in train.values())
    typer.echo(f"train tables: {rows} rows for {len(sizes)} n_fft in {seconds:.0f} s ({rows / max(seconds, 1e-9):.0f} rows/s)")
    dev, _, dev_rows = _tables(data, "dev", mixes=0, jobs=jobs, cache=cache, quiet=quiet, n_ffts=sizes)
    names = [c.strip() for c in classifiers.split(",") if c.strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    done = exp.load_runs(out.with_suffix(".json")) if reuse else {}
    runs = exp.grid(train, dev, names=names, done=done, log=typer.echo)
    _write_runs(out.with_suffix(".json"), runs, None)  # the grid's hour is kept even if a later step fails
    # The seed's pooled shortcut, tried with one classifier per task that the grid also fits per n_fft.
    runs += exp.pooled(train, dev, sound_clf="logreg", gender_clf="hgb", done=done, log=typer.echo)
    peer = _silero_peer(dev_rows, data, dev, models)
    _write_runs(out.with_suffix(".json"), runs, peer)
    experiments_plot(runs, out.with_suffix(".png"), peer=peer)
    head = ["# The seed's experiment across sources", "",
            "Generated by `dramapic-subs-train experiments`: each configuration is fitted on "
            "`../shared/data/train` (with the speech-over-bed mixes and class/source weights of the shipped models) "
            "and scored window by window on `../shared/data/dev`, whose corpora and speakers it never saw. "
            "No choice is made on these numbers; the shipped models are chosen on grouped cross-validation. "
            f"Train tables: {rows} rows for {len(sizes)} n_fft, built in {seconds:.0f} s "
            "(a re-run reads them from the cache).", "",
            f"![scores against n_fft]({out.with_suffix('.png').name})", "", ""]
    body = experiments_markdown(runs)
    out.write_text("\n".join(head) + body + peer_markdown(peer))
    typer.echo(f"wrote {out}")


@app.command("export-encoder")
def export_encoder_cmd(
    out: Path = typer.Option(DEFAULT_MODELS, help="Where speaker_encoder.npz, .json and .LICENSE.txt go."),
    dtype: str = typer.Option("float16", help="Storage type of the weights: float16 or float32."),
) -> None:
    """Export Resemblyzer's voice encoder (from its installed wheel, read with torch) to numpy weights."""
    from ..errors import DramapicError
    from .embedding_export import export_encoder

    try:
        card = export_encoder(out, dtype=dtype)
    except DramapicError as exc:  # no torch or resemblyzer here: one line, not a traceback
        typer.echo(f"dramapic-subs-train: error: {exc}", err=True)
        raise typer.Exit(1) from None
    meta = json.loads(card.read_text(encoding="utf-8"))
    size = (out / "speaker_encoder.npz").stat().st_size / 1e6
    typer.echo(f"wrote {card.parent / 'speaker_encoder.npz'} ({meta['parameters']} parameters, "
               f"{meta['dtype']}, {size:.1f} MB), its card and licence")


@app.command("embedding-gender")
def embedding_gender_cmd(
    data: Path = typer.Option(DEFAULT_DATA, help="Folder with manifest.csv, train/ and dev/."),
    cache: Path = typer.Option(Path.home() / ".cache" / "dramapic-subs" / "embeddings",
                               help="Per-file embedding and feature cache (keyed by file hash)."),
    out: Path = typer.Option(Path("reports") / "embedding_gender.md", help="Markdown report (.json beside)."),
    models: Path = typer.Option(DEFAULT_MODELS, help="Speaker encoder and the shipped gender bundle."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Gender per voice from speaker embeddings, and speaker-change detection, scored on dev."""
    from .embedding_report import run_experiment

    run_experiment(data=data, cache=cache, out=out, models=models, quiet=quiet, log=typer.echo)


def _write_runs(path: Path, runs: list, peer) -> None:
    """The experiments' JSON: every run, and the peer comparison (or null)."""
    results = {"runs": [r.__dict__ for r in runs], "peer": peer.__dict__ if peer else None}
    path.write_text(json.dumps(_jsonable(results), indent=1) + "\n")


def _silero_peer(rows: list[dict], data: Path, dev: dict[int, Table], models: Path):
    """Silero VAD beside the shipped sound model on the dev windows, or None without silero-vad."""
    from . import peers

    if not peers.silero_available():
        typer.echo('silero-vad not installed (pip install ".[bench]"): no peer comparison')
        return None
    sound = load_bundle(SOUND_TYPE, directory=models)
    if sound.spec.n_fft not in dev:
        typer.echo(f"no dev table for n_fft {sound.spec.n_fft}: no peer comparison")
        return None
    return peers.compare(rows, data, sound=sound, categories=dev[sound.spec.n_fft].meta["category"],
                         log=typer.echo)


def _markdown(results: dict, sound: ModelBundle, gender: ModelBundle) -> str:
    s, g = results["sound_type"], results["gender"]
    lines = [
        "# Accuracy on ../shared/data/dev (sources and speakers never trained on)",
        "",
        "Generated by `dramapic-subs-train evaluate`. Window level (2 s windows, 1 s hop), "
        "silent windows excluded, no temporal smoothing (dev clips are separate recordings).",
        "",
        f"Models: sound type `{sound.meta.get('grouped_cv', {}).get('chosen', '?')}` at n_fft {sound.spec.n_fft}, "
        f"gender `{gender.meta.get('grouped_cv', {}).get('chosen', '?')}` at n_fft {gender.spec.n_fft}.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| speech-vs-rest balanced accuracy | {s['speech_vs_rest_bacc']:.3f} |",
        f"| 5-class macro F1 | {s['macro_f1']:.3f} |",
        f"| music and song windows called speech | {s['music_song_called_speech']:.3f} |",
        f"| gender accuracy on speech windows | {g['accuracy']:.3f} |",
        f"| gender accuracy, female / male | {g['per_gender']['female']:.3f} / {g['per_gender']['male']:.3f} |",
        "",
        "Recall per class: " + ", ".join(f"{k} {v:.3f}" for k, v in s["recall"].items()),
        "",
        "## Sound-type confusion (windows)",
        "",
        confusion_markdown(s["confusion"], SOUND_LABELS),
        "",
        "## Sound type: accuracy per dev source",
        "",
        "| source | windows | accuracy |",
        "|---|---|---|",
        *[f"| {k} | {v['n']} | {v['accuracy']:.3f} |" for k, v in s["by_source"].items()],
        "",
        "## Gender: accuracy per source and language",
        "",
        "| group | windows | accuracy |",
        "|---|---|---|",
        *[f"| {k} | {v['n']} | {v['accuracy']:.3f} |" for k, v in {**g["by_source"], **g["by_language"]}.items()],
        "",
    ]
    if "programmes" in results:
        p = results["programmes"]
        ps, pg = p["sound_type"], p["gender"]
        lines += [
            "## Drama-like programmes through the whole CLI",
            "",
            f"{p['programmes']} programmes of ~{p['seconds_each']:.0f} s built from dev clips "
            "(`dramapic_subs/train/programmes.py`): dialogue between a female and a male voice, a voice over a "
            "music or noise bed at 5-15 dB SNR, music, song and ambience scenes, hard cuts and silences; muxed "
            "into mp4, captioned by `dramapic-subs --format json` (with its smoothing), each cue scored against "
            "the segment under its centre (cues in silences left out; cues next to a cut count too).",
            "",
            "| measure | value |",
            "|---|---|",
            f"| cues scored | {ps['n']} |",
            f"| speech-vs-rest balanced accuracy | {ps['speech_vs_rest_bacc']:.3f} |",
            f"| 5-class macro F1 | {ps['macro_f1']:.3f} |",
            f"| music and song cues called speech | {ps['music_song_called_speech']:.3f} |",
            f"| gender accuracy on speech cues | {pg['accuracy']:.3f} (female {pg['per_gender']['female']:.3f}, "
            f"male {pg['per_gender']['male']:.3f}) |",
            "",
            confusion_markdown(ps["confusion"], SOUND_LABELS),
            "",
        ]
    return "\n".join(lines)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def main() -> None:
    app()
