"""``dramapic-subs-train``: rebuild the shipped models and their dev report.

    dramapic-subs-train fit       # ../shared/data/train -> models/
    dramapic-subs-train evaluate  # dev, dev programmes, leave-one-corpus-out -> reports/accuracy.md
    dramapic-subs-train experiments  # n_fft x classifier x features, Silero VAD -> reports/experiments.md
    dramapic-subs-train export-encoder    # resemblyzer wheel (torch) -> models/speaker_encoder.npz
    dramapic-subs-train embedding-gender  # gender and speaker change from embeddings -> reports/embedding_gender.md
    dramapic-subs-train export    # pickled models/*.joblib of older releases -> models/*.npz
"""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import typer

from ..embedding import ENCODER_NAME
from ..errors import ModelError, ParameterError
from ..features import BASE_FEATURES, FeatureSpec
from ..models import GENDER, SOUND_TYPE, ModelBundle, load_bundle, save_bundle
from ..progress import Progress
from ..smoothing import ChangeRule
from ..representations import (
    SileroVad,
    SpeakerEmbedding,
    Spectral,
    encoder_from_file,
    silero_from_file,
)
from . import convert
from . import fit as fitting
from .report import GENDER_LABELS, SOUND_LABELS
from .tables import Table, build_tables, plan_jobs, read_manifest, spectral_key

# Run from the project's root: the data lies beside it, models/ and reports/ in it.
DEFAULT_DATA = Path(os.environ.get("DRAMAPIC_DATA", "../shared/data"))
DEFAULT_MODELS = Path("models")
DEFAULT_REPORT = Path("reports") / "accuracy.md"
DEFAULT_CACHE = Path.home() / ".cache" / "dramapic-subs" / "tables"
SOUND_NFFT, GENDER_NFFT = 1024, 512
# Frame hops (samples): n_fft / 2, half the frames (and CPU) of the seed's n_fft / 4 (issue #11). Out of
# corpus the gender model scored 0.984 against 0.983 at n_fft / 4, the sound model macro F1 0.665 against
# 0.661 and speech vs rest 0.954 against 0.953: pooled over a 2 s window, 31-62 frames per second suffice.
GENDER_HOP = GENDER_NFFT // 2
SOUND_HOP = SOUND_NFFT // 2
# The product embeds every 2nd window (about 10 ms of CPU each; training embeds all): on drama-like
# programmes every 4th gave the right gender on 0.80 of speech cues, every 2nd on 0.93, every one on 0.97.
# With the windows between two differing points embedded too (turn_model.refine_threshold), speech cues
# with the right gender on the held-out programmes (emotiontts / LibriSpeech / RAVDESS): every 2nd 0.987 /
# 0.983 / 0.883, every 3rd 0.985 / 0.983 / 0.820, every 4th 0.981 / 0.965 / 0.840.
EMBED_STRIDE = 2
VERSION = "0.1.0"
# Singing over instrumental music, labelled song (issue #10): off, as out of corpus they cost music
# and FSDD's speech more than they gave song (reports/song_mixes.md).
SONG_MIXES = 0
# Speech-over-music mixes below this SNR (dB) left out: 6 dB was chosen out of corpus against keeping them
# all; with the rhythm mixes in, 10 dB beat 6 dB out of corpus (hgb, same folds): speech vs rest 0.955 ->
# 0.957, music and song called speech 9.2% -> 8.9% (gugak 20.2% -> 16.0%), animal calls 9.2% -> 8.2%,
# office sounds 7.0% -> 6.2%, RAVDESS kept 0.940 -> 0.950; in corpus macro F1 0.816 -> 0.813.
MUSIC_FLOOR_DB = 10.0
# Music, noise and nature clips chopped to a talker's syllable rhythm, labelled as the clip (hard negatives).
# Against none (hgb, same folds; train pool only): out of corpus macro F1 0.663 -> 0.668, animal calls called
# speech 13.0% -> 9.2%, noise recall 0.455 -> 0.490, but office sounds 5.3% -> 7.0% and FSDD kept 0.914 ->
# 0.893; in corpus macro F1 0.805 -> 0.816, speech vs rest 0.990 -> 0.992, music and song called speech
# 2.2% -> 1.8%, animal calls 8.9% -> 4.6%.
RHYTHM_MIXES = 1500
# Laughs, grunts, clicks, cries and sighs made from the pool's talkers' vowels, labelled noise (hard negatives):
# off. 1,200 of them against none (hgb, same folds; train pool only): out of corpus RAVDESS's acted speech kept
# 0.950 -> 0.876, speech vs rest 0.957 -> 0.945, macro F1 0.668 -> 0.661, office sounds called speech 6.2% ->
# 7.9%, animal calls 8.2% -> 9.8%; outside the pool (tools/outside_probe.py) Hedgewars' non-verbal sounds 31.1%
# -> 28.9% called speech (its laughs 34.6%, unchanged), its spoken lines kept 74.7% -> 75.6%. Made from
# speech, they teach that emotional speech is not speech more than they teach what a laugh is.
VOCAL_MIXES = 0

app = typer.Typer(add_completion=False, help=__doc__)


def _tables(data: Path, split: str, *, mixes: int, jobs: int, cache: Path | None, quiet: bool, song_mixes: int = 0,
            music_floor_db: float | None = None, rhythm_mixes: int = 0, vocal_mixes: int = 0,
            specs: tuple[FeatureSpec, ...] | None = None,
            vad: SileroVad | None = None,
            speaker: SpeakerEmbedding | None = None) -> tuple[dict, float, list[dict]]:
    """Feature tables of a split (see :func:`~dramapic_subs.train.tables.build_tables`), seconds taken, manifest rows.

    ``specs``: the spectral settings to tabulate; None: those :func:`_inputs` gives the models by default.
    """
    rows = read_manifest(data, split)
    plan = plan_jobs(rows, augment_mixes=mixes, song_mixes=song_mixes, music_floor_db=music_floor_db,
                     rhythm_mixes=rhythm_mixes, vocal_mixes=vocal_mixes)
    if specs is None:
        specs = _spectral_specs(rep for reps in _inputs(None, None).values() for rep in reps)
    t0 = time.perf_counter()
    with Progress(quiet=quiet) as progress:
        task = progress.task(f"features ({split})", total=len(plan))
        tables = build_tables(plan, data_dir=data, specs=list(specs), cache_dir=cache, n_jobs=jobs,
                              progress=lambda done: progress.update(task, done),
                              vad=vad.weights if vad else None, encoder=speaker.encoder if speaker else None)
    return tables, time.perf_counter() - t0, rows


def _fit_mixes(meta: dict) -> dict:
    """The augmentation settings a sound card's fit used (older cards: the settings of their day).

    Re-built with these, the train tables hold the rows that fit saw, so the cached fold
    predictions are that model's.
    """
    return {"song_mixes": int(meta.get("song_mixes", 0)), "music_floor_db": meta.get("music_floor_db"),
            "rhythm_mixes": int(meta.get("rhythm_mixes", 0)), "vocal_mixes": int(meta.get("vocal_mixes", 0))}


def _vad(out: Path, *, log=typer.echo) -> SileroVad:
    """Silero's weights exported from its wheel into ``out`` (or the copy already there)."""
    from .export_vad import export

    try:
        path = export(out)
    except ModelError as exc:
        path = out / "silero_vad.npz"
        if not path.is_file():
            raise
        log(f"{exc}; using {path} as it is")
    return silero_from_file(path)


def _turns(task, *, stride: int) -> tuple[float, dict]:
    """The speaker-change detector for the gender card, fitted on the same training rows, and the
    embedding refinement threshold it was scored with (:func:`~dramapic_subs.train.turn_model.refine_threshold`)."""
    from .turn_model import fit_turn_model, refine_threshold

    names = [n for rep in task.inputs for n in rep.names]
    refine = refine_threshold(task, names, stride=stride)
    model, info = fit_turn_model(task, names, stride=stride, refine=refine)  # as the product embeds
    typer.echo(f"  embeddings: one voiced window in {stride}, and those between two over cosine distance "
               f"{refine:.3f}")
    typer.echo(f"  turns: {info['detector']}, change threshold {model.threshold:.2f} "
               f"({info['by_threshold'][info['chosen']]}; each detector's best: {info['detectors']})")
    return refine, {"turns": model.card(names), "turn_detection": _jsonable(info)}


def _encoder(out: Path, *, stride: int = EMBED_STRIDE, log=typer.echo) -> SpeakerEmbedding:
    """Resemblyzer's encoder exported from its wheel into ``out`` (or the copy already there)."""
    from .embedding_export import export_encoder

    path = out / f"{ENCODER_NAME}.npz"
    try:
        export_encoder(out)
    except (ModelError, ImportError) as exc:
        if not path.is_file():
            raise
        log(f"{exc}; using {path} as it is")
    return encoder_from_file(path, stride=stride)


def _inputs(vad: SileroVad | None, speaker: SpeakerEmbedding | None, *, gender_hop: int = GENDER_HOP,
            sound_hop: int = SOUND_HOP) -> dict[str, tuple]:
    """Each model's inputs: the design card's n_fft at its frame hop (samples; a ParameterError for a
    bad one), Silero VAD beside the sound type's, the speaker embedding beside the gender's."""
    return {SOUND_TYPE: (Spectral(FeatureSpec(SOUND_NFFT, hop=sound_hop)), vad),
            # The gender model keeps to the columns before the song ones (they are about singing).
            GENDER: (Spectral(FeatureSpec(GENDER_NFFT, hop=gender_hop), tuple(BASE_FEATURES)), speaker)}


def _spectral_specs(reps) -> tuple[FeatureSpec, ...]:
    """The distinct spectral settings among ``reps``, in order: the tables these inputs read."""
    return tuple(dict.fromkeys(rep.spec for rep in reps if isinstance(rep, Spectral)))


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
    cache: Path = typer.Option(DEFAULT_CACHE, help="Feature and prediction cache (keyed by content and settings)."),
    mixes: int = typer.Option(3000, help="Speech-over-bed augmentation mixes."),
    song_mixes: int = typer.Option(SONG_MIXES, help="Singing-over-music augmentation mixes (labelled song)."),
    music_floor_db: float = typer.Option(MUSIC_FLOOR_DB, help="Leave out speech-over-music mixes below this SNR (dB; 0: keep them all)."),
    rhythm_mixes: int = typer.Option(RHYTHM_MIXES, help="Music, noise and nature clips chopped to a talker's "
                                                        "syllable rhythm, labelled as the clip."),
    vocal_mixes: int = typer.Option(VOCAL_MIXES, help="Laughs, grunts, clicks, cries and sighs made from "
                                                      "talkers' vowels, labelled noise."),
    jobs: int = typer.Option(-1, help="Parallel workers (joblib; -1: all cores)."),
    sound_candidates: str = typer.Option("hgb", help="Sound-type estimators compared out of corpus (also: "
                                                    "hgb_reg, hgb_sub, logreg, vote, mlp)."),
    gender_candidates: str = typer.Option("logreg_strong,logreg,hgb", help="Gender estimators compared out of corpus."),
    gender_hop: int = typer.Option(GENDER_HOP, help=f"Frame hop of the gender model's STFT (samples; n_fft is "
                                                    f"{GENDER_NFFT}: {GENDER_NFFT // 4} is the sound model's "
                                                    "n_fft / 4, twice the frames)."),
    sound_hop: int = typer.Option(SOUND_HOP, help=f"Frame hop of the sound-type model's STFT (samples; n_fft is "
                                                  f"{SOUND_NFFT})."),
    embed_stride: int = typer.Option(EMBED_STRIDE, help="The product embeds one voiced window in this many for "
                                                        "gender (and those between two whose voices differ)."),
    only: str = typer.Option("sound_type,gender", help="Which bundles to rebuild."),
    ablation: bool = typer.Option(True, help="Also score the sound model without Silero's columns, out of corpus."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Build the training tables, choose each model leaving one corpus out at a time, write models/."""
    from . import loco

    wanted = {m.strip() for m in only.split(",")}
    if embed_stride < 1:
        raise typer.BadParameter(f"--embed-stride must be at least 1, got {embed_stride}")
    vad = _vad(out)
    speaker = _encoder(out, stride=embed_stride) if GENDER in wanted else None
    try:
        inputs = _inputs(vad, speaker, gender_hop=gender_hop, sound_hop=sound_hop)
    except ParameterError as exc:
        raise typer.BadParameter(str(exc)) from None
    # Only the spectral tables the rebuilt models read: --only gender need not touch the sound model's.
    specs = _spectral_specs(rep for name in (SOUND_TYPE, GENDER) if name in wanted for rep in inputs[name])
    # Recorded in the cards as they are passed, so _fit_mixes can rebuild these rows from a card.
    mix_settings = {"song_mixes": song_mixes, "music_floor_db": music_floor_db, "rhythm_mixes": rhythm_mixes,
                    "vocal_mixes": vocal_mixes}
    tables, seconds, rows = _tables(data, "train", mixes=mixes, jobs=jobs, cache=cache, quiet=quiet, **mix_settings,
                                    specs=specs, vad=vad if SOUND_TYPE in wanted else None, speaker=speaker)
    n_rows = len(next(iter(tables.values())))
    typer.echo(f"tables: {n_rows} window rows in {seconds:.0f} s ({n_rows / max(seconds, 1e-9):.0f} rows/s)")
    summary = {"training_data": _data_summary(rows), "augmentation_mixes": mixes, **mix_settings,
               "versions": fitting.versions(), "version": VERSION}
    tasks = ((SOUND_TYPE, fitting.sound_task, sound_candidates), (GENDER, fitting.gender_task, gender_candidates))
    for name, make, names in tasks:
        if name not in wanted:
            continue
        reps = inputs[name]
        task = make(fitting.joined(tables, reps), reps)
        model, info = loco.select_and_fit(task, names=[c.strip() for c in names.split(",") if c.strip()],
                                          cache_dir=cache / "loco", log=typer.echo)
        labels = SOUND_LABELS if task.name == SOUND_TYPE else GENDER_LABELS
        meta = {**summary, "selection": _jsonable(info), "train_windows": len(task.y)}
        inputs = task.inputs
        if task.name == GENDER:
            refine, turns = _turns(task, stride=embed_stride)
            meta.update(turns)
            inputs = tuple(replace(r, refine=refine) if isinstance(r, SpeakerEmbedding) else r for r in inputs)
        change = ChangeRule.from_card(info["smooth_change"]) if info.get("smooth_change") else None
        bundle = ModelBundle(task.name, model, labels, task.inputs[0].spec, smooth=info["smooth"], change=change,
                             inputs=inputs, temperature=info["temperature"], meta=meta)
        path = save_bundle(bundle, out)
        typer.echo(f"wrote {path} ({info['chosen']})")
        if task.name == SOUND_TYPE and ablation:  # the chosen estimator without Silero's columns: what they bring
            spectral = fitting.sound_task(fitting.joined(tables, reps[:1]), reps[:1])
            meta["ablation"] = {f"{info['chosen']} without silero_vad": _jsonable(loco.loco_summary(
                spectral, info["chosen"], cache_dir=cache / "loco", log=typer.echo))}
            save_bundle(bundle, out)


@app.command("export")
def export_cmd(
    models: Path = typer.Option(DEFAULT_MODELS, help="Folder with NAME.joblib + NAME.json bundles."),
    keep: bool = typer.Option(False, help="Keep the .joblib files after converting them."),
) -> None:
    """Convert pickled bundles of older releases to the npz format (needs the scikit-learn that pickled them)."""
    for name in (SOUND_TYPE, GENDER):
        path = convert.joblib_to_npz(name, directory=models, keep=keep)
        typer.echo(f"wrote {path} and {path.with_suffix('.npz').name}")


@app.command("evaluate")
def evaluate_cmd(
    data: Path = typer.Option(DEFAULT_DATA, help="Folder with manifest.csv, train/ and dev/."),
    models: Path = typer.Option(DEFAULT_MODELS, help="Model bundles to score."),
    cache: Path = typer.Option(DEFAULT_CACHE),
    report: Path = typer.Option(DEFAULT_REPORT, help="Markdown report to write (.json and .png beside)."),
    mixes: int = typer.Option(3000, help="Mixes in the train tables (as fit used: the folds' cache keys)."),
    song_mixes: int = typer.Option(-1, help="Song mixes in the train tables (-1: as the sound card says fit used)."),
    jobs: int = typer.Option(-1),
    programmes: int = typer.Option(6, help="Drama-like programmes built from dev clips and run through the CLI."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Score the models on dev, on dev programmes and leaving one training corpus out at a time."""
    from . import evaluate as ev
    from .calibration import reliability_plot
    from .programmes import score_held_out_programmes, score_programmes

    sound = load_bundle(SOUND_TYPE, directory=models)
    gender = load_bundle(GENDER, directory=models)
    reps = [*sound.inputs, *gender.inputs]
    vad = next((r for r in reps if isinstance(r, SileroVad)), None)
    speaker = next((r for r in reps if isinstance(r, SpeakerEmbedding)), None)
    fitted = _fit_mixes(sound.meta)  # the folds must see the rows fit saw, or their cached predictions are not the model's
    if song_mixes >= 0:
        fitted["song_mixes"] = song_mixes
    specs = _spectral_specs(reps)  # each bundle's own n_fft and hop, as its card says
    dev, _, rows = _tables(data, "dev", mixes=0, jobs=jobs, cache=cache, quiet=quiet, specs=specs, vad=vad,
                           speaker=speaker)
    train, _, train_rows = _tables(data, "train", mixes=mixes, jobs=jobs, cache=cache, quiet=quiet, **fitted,
                                   specs=specs, vad=vad, speaker=speaker)
    results = ev.dev_scores(dev, sound, gender)
    out_of_corpus = ev.loco_scores(train, sound, gender, cache_dir=cache / "loco", log=typer.echo)
    prog = score_programmes(rows, data, count=programmes, seconds=180.0, models=models, log=typer.echo) if programmes else None
    held = score_held_out_programmes(train, train_rows, data, models=models, count=max(1, programmes * 2 // 3),
                                     seconds=180.0, log=typer.echo) if programmes else None
    report.parent.mkdir(parents=True, exist_ok=True)
    plot = report.with_suffix(".png")
    reliability_plot(ev.reliability_curves(results, out_of_corpus), plot)
    doc = {"dev": results, "leave_one_corpus_out": out_of_corpus, "programmes": prog, "held_out_programmes": held}
    report.with_suffix(".json").write_text(json.dumps(_jsonable(doc), indent=1) + "\n")
    report.write_text(ev.markdown(results, out_of_corpus, sound, gender, prog, plot.name, held))
    s, g = results["sound_type"], results["gender"]
    typer.echo(f"dev: speech-vs-rest {s['speech_vs_rest_bacc']:.3f}, macro F1 {s['macro_f1']:.3f}, music/song "
               f"called speech {s['music_song_called_speech']:.3f}, gender female {g['per_gender']['female']:.3f} "
               f"male {g['per_gender']['male']:.3f}, ECE {s['reliability']['ece']:.3f} / {g['reliability']['ece']:.3f}")
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
    specs = tuple(FeatureSpec(n) for n in sizes)  # the seed's hop, n_fft / 4: the tables are keyed by n_fft alone
    train, seconds, _ = _tables(data, "train", mixes=mixes, jobs=jobs, cache=cache, quiet=quiet, specs=specs)
    rows = sum(len(t) for t in train.values())
    typer.echo(f"train tables: {rows} rows for {len(sizes)} n_fft in {seconds:.0f} s ({rows / max(seconds, 1e-9):.0f} rows/s)")
    dev, _, dev_rows = _tables(data, "dev", mixes=0, jobs=jobs, cache=cache, quiet=quiet, specs=specs)
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
    key = spectral_key(sound.spec)
    if key not in dev:
        typer.echo(f"no dev table for n_fft {sound.spec.n_fft}, hop {sound.spec.hop}: no peer comparison")
        return None
    return peers.compare(rows, data, sound=sound, categories=dev[key].meta["category"],
                         log=typer.echo)


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
