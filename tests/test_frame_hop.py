"""The frame hop as a setting (issue #11): a spectral stream at n_fft / 2 computes half the frames.

Each check compares against a computation that does not use the code under
test: frames sliced out of a zero-padded copy of the signal and analysed as
copies (the plain formulas), cache keys written out by hand, a model card
edited on disk and run through the analysis pipeline.
"""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from dramapic_subs import features as F
from dramapic_subs.errors import ModelError, ParameterError
from dramapic_subs.media import read_audio
from dramapic_subs.models import GENDER, SOUND_TYPE, default_models_dir, load_bundle
from dramapic_subs.pipeline import analyze
from dramapic_subs.representations import Spectral, from_card, window_matrix
from dramapic_subs.train import cli as train_cli
from dramapic_subs.train import fit
from dramapic_subs.train.tables import FEATURE_VERSION, build_tables, plan_jobs, read_manifest, spectral_key
from dramapic_subs.windows import make_grid

from .conftest import SR, dev_audio, mux, tone, white_noise

GRID = make_grid(sr=SR, window_s=2.0, hop_s=1.0)
HALF = F.FeatureSpec(512, hop=256)  # the gender model's new setting
QUARTER = F.FeatureSpec(512)        # n_fft / 4: every model before issue #11


@pytest.fixture(scope="module")
def speech(data_dir) -> np.ndarray:
    """40 s of real speech, then white noise, exact zeros and a tone: over 2048 frames at either hop."""
    return np.concatenate([dev_audio(data_dir, "librispeech_resemblyzer", 30.0), white_noise(4.0),
                           np.zeros(SR, np.float32), tone(5.0, 180.0)])


def _call_sizes(monkeypatch) -> list[tuple[F.FeatureSpec, int]]:
    """Record (spec, frames) of every FrameAnalyzer call from now on (in this process)."""
    calls: list[tuple[F.FeatureSpec, int]] = []
    real = F.FrameAnalyzer.__call__

    def spy(self, frames, prev):
        calls.append((self.spec, len(frames)))
        return real(self, frames, prev)

    monkeypatch.setattr(F.FrameAnalyzer, "__call__", spy)
    return calls


def _plain_rows(y: np.ndarray, spec: F.FeatureSpec, sizes: list[int]) -> np.ndarray:
    """Pooled rows the straightforward way: centred frames copied out of a zero-padded signal.

    Copies take the analyzer's plain formulas (no per-chunk sums); ``sizes``
    are the frames per analyzer call, as the streaming code made them (OpenBLAS
    rounds a matrix product by how many rows it is given). A window pools the
    frames whose centre ``k * hop`` lies in it. OpenBLAS runs on one thread,
    as the streaming code holds it (a multi-threaded product rounds otherwise).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _plain_rows_one_thread(y, spec, sizes)


def _plain_rows_one_thread(y: np.ndarray, spec: F.FeatureSpec, sizes: list[int]) -> np.ndarray:
    n, h = spec.n_fft, spec.hop
    padded = np.concatenate([np.zeros(n // 2, np.float32), y, np.zeros(n // 2, np.float32)])
    frames = np.stack([padded[k * h:k * h + n] for k in range(sum(sizes))])
    analyzer, prev, parts, at = F.FrameAnalyzer(spec), None, [], 0
    for size in sizes:
        feats, prev = analyzer(frames[at:at + size].copy(), prev)
        parts.append(feats)
        at += size
    feats = np.vstack(parts)
    rows = []
    for i in range(GRID.n_cues(len(y))):
        start, end = GRID.span(i, len(y))
        rows.append(F.pool_window(feats[-(-start // h):min(-(-end // h), len(feats))], spec.sr / h))
    return np.array(rows)


# --- the setting ---------------------------------------------------------------------------------

def test_hop_defaults_to_a_quarter_of_n_fft_and_is_keyword_only():
    assert QUARTER.hop == 128 and F.FeatureSpec(1024).hop == 256 and HALF.hop == 256
    assert F.FeatureSpec(512, hop=128) == QUARTER and hash(F.FeatureSpec(512, hop=128)) == hash(QUARTER)
    assert HALF != QUARTER and HALF.overlap == 2 and QUARTER.overlap == 4
    assert type(F.FeatureSpec(512, hop=np.int64(256)).hop) is int  # JSON-writable on a card
    with pytest.raises(TypeError):
        F.FeatureSpec(512, 16000, 256)  # positional: it would read as something else


@pytest.mark.parametrize("hop", [0, -128, 96, 300, 1024, 256.0, True, "256"])
def test_bad_hops_are_parameter_errors(hop):
    with pytest.raises(ParameterError, match="hop"):
        F.FeatureSpec(512, hop=hop)


# --- the frames ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n_fft, hop", [(512, 256), (512, 512), (1024, 512), (2048, 1024), (2048, 512), (512, 128)])
def test_level_and_crossings_per_chunk_equal_the_plain_formulas_at_any_hop(speech, n_fft, hop):
    """Chunk sums added in numpy's pairwise order: bit for bit ``np.mean(frames ** 2)``, for 1, 2 or 4 chunks."""
    y = speech[: 20 * SR]
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    analyzer = F.FrameAnalyzer(F.FeatureSpec(n_fft, hop=hop))
    assert len(frames) > analyzer.block and len(frames) % analyzer.block  # several FFT blocks and a partial one
    fast, _ = analyzer(frames, None)
    assert F._hop_span(frames, hop) is not None  # the per-chunk path really ran
    col = F._COL
    rms_db = (10 * np.log10(np.mean(frames ** 2, axis=1) + F._EPS)).astype(np.float32)
    np.testing.assert_array_equal(fast[:, col["rms_db"]], rms_db)
    signs = np.signbit(frames)
    zcr = (np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / (n_fft - 1)).astype(np.float32)
    np.testing.assert_array_equal(fast[:, col["zcr"]], zcr)
    plain, _ = F.FrameAnalyzer(F.FeatureSpec(n_fft, hop=hop))(frames.copy(), None)
    np.testing.assert_array_equal(fast, plain)


def test_half_hop_computes_half_the_frames_and_the_plain_rows(speech, monkeypatch):
    calls = _call_sizes(monkeypatch)
    got = {}
    for spec in (QUARTER, HALF):
        calls.clear()
        got[spec] = F.featurize(speech, spec=spec, grid=GRID).X
        assert {s for s, _ in calls} == {spec}
        sizes = [size for _, size in calls]
        assert sum(sizes) == len(speech) // spec.hop + 1  # librosa's centred frame count
        np.testing.assert_array_equal(got[spec], _plain_rows(speech, spec, sizes))
    frames = {spec: len(speech) // spec.hop + 1 for spec in got}
    assert frames[HALF] == (frames[QUARTER] + 1) // 2
    assert got[HALF].shape == got[QUARTER].shape == (GRID.n_cues(len(speech)), len(F.feature_names()))
    assert not np.array_equal(got[HALF], got[QUARTER])  # another grid, not the same frames relabelled


# --- model cards and the pipeline ---------------------------------------------------------------

def _edit_gender_card(models, edit) -> dict:
    path = models / f"{GENDER}.json"
    card = json.loads(path.read_text(encoding="utf-8"))
    edit(card)
    path.write_text(json.dumps(card), encoding="utf-8")
    return card


def _set_hop(hop: int):
    def edit(card: dict) -> None:
        card["hop"] = hop
        card["inputs"][0]["hop"] = hop
    return edit


def _drop_hop(card: dict) -> None:
    """A card as written before the hop was a setting of the spectral input (and without the top-level hop)."""
    card.pop("hop", None)
    card["inputs"][0].pop("hop", None)


@pytest.fixture
def models(tmp_path):
    out = tmp_path / "models"
    shutil.copytree(default_models_dir(), out, ignore=shutil.ignore_patterns("__*"))
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory, ffmpeg, data_dir):
    """25 s of dev speech in an mp4, and the samples the pipeline decodes from it."""
    path = mux(ffmpeg, dev_audio(data_dir, "librispeech_resemblyzer", 25.0), tmp_path_factory.mktemp("hop") / "s.mp4")
    return path, read_audio(path, sr=SR, ffmpeg=ffmpeg)


def test_spectral_input_key_and_card_carry_the_hop():
    half, quarter = Spectral(HALF), Spectral(QUARTER)
    assert half.key != quarter.key  # two streams at one n_fft, never shared by mistake
    assert half.card() == {"kind": "spectral", "n_fft": 512, "hop": 256, "sr": SR, "columns": F.feature_names()}
    assert from_card(half.card(), directory=default_models_dir()) == half
    # A card without a hop (or columns) predates them: n_fft / 4, and the columns before the song ones.
    assert from_card({"kind": "spectral", "n_fft": 512, "sr": SR},
                     directory=default_models_dir()) == Spectral(QUARTER, tuple(F.BASE_FEATURES))
    with pytest.raises(ModelError, match="hop"):
        from_card({"kind": "spectral", "n_fft": 512, "hop": 300}, directory=default_models_dir())


def test_a_card_at_hop_256_runs_its_stream_at_256(models, clip, monkeypatch):
    path, y = clip
    _edit_gender_card(models, _set_hop(256))
    gender = load_bundle(GENDER, directory=models)
    assert gender.spec == HALF and gender.inputs[0].spec == HALF
    sound = load_bundle(SOUND_TYPE, directory=models)
    calls = _call_sizes(monkeypatch)
    analysis = analyze(path, models=[sound, gender], processes=False)
    frames = {}
    for spec, size in calls:
        frames[spec] = frames.get(spec, 0) + size
    assert sound.spec == F.FeatureSpec(1024, hop=512)  # the shipped sound model's own card
    assert frames == {sound.spec: len(y) // 512 + 1, HALF: len(y) // 256 + 1}
    out = {m.name: m for m in analysis.models}
    assert (out[GENDER].n_fft, out[GENDER].hop) == (512, 256) and (out[SOUND_TYPE].n_fft, out[SOUND_TYPE].hop) == (1024, 512)


def test_a_card_without_a_hop_keeps_n_fft_over_4_bit_for_bit(models, clip, monkeypatch):
    path, y = clip
    card = _edit_gender_card(models, _drop_hop)
    assert "hop" not in card and "hop" not in card["inputs"][0]
    gender = load_bundle(GENDER, directory=models)
    assert gender.spec == QUARTER and gender.inputs[0].spec == QUARTER
    calls = _call_sizes(monkeypatch)
    got = window_matrix(y, inputs=gender.inputs[:1], grid=GRID)
    assert {s for s, _ in calls} == {QUARTER} and sum(size for _, size in calls) == len(y) // 128 + 1
    np.testing.assert_array_equal(got, gender.inputs[0].select(_plain_rows(y, QUARTER, [size for _, size in calls])))
    calls.clear()
    analyze(path, models=[load_bundle(SOUND_TYPE, directory=models), gender], processes=False)
    assert sum(size for spec, size in calls if spec.n_fft == 512) == len(y) // 128 + 1


def test_a_card_whose_hops_disagree_is_refused(models):
    def edit(card: dict) -> None:
        card["hop"] = 128
        card["inputs"][0]["hop"] = 256
    _edit_gender_card(models, edit)
    with pytest.raises(ModelError, match="contradicts itself"):
        load_bundle(GENDER, directory=models)


# --- training tables -----------------------------------------------------------------------------

def test_tables_and_cache_keep_each_hop_apart_and_old_keys_valid(data_dir, tmp_path, monkeypatch):
    rows = [r for r in read_manifest(data_dir, "dev") if r["category"] == "speech"][::200][:4]
    jobs = plan_jobs(rows, augment_mixes=0)
    tables = build_tables(jobs, data_dir=data_dir, specs=[QUARTER, HALF], cache_dir=tmp_path, n_jobs=1)
    assert spectral_key(QUARTER) == 512 and spectral_key(HALF) == "512/256"
    assert set(tables) == {512, "512/256"}
    a, b = tables[512], tables["512/256"]
    assert len(a) == len(b) > 4 and not np.array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.meta["job"], b.meta["job"])
    # The default hop's cache names are the ones every earlier table was saved under.
    files = {p.stem for p in tmp_path.glob("*.npy")}
    assert len(files) == 2 * len(jobs)
    for job in jobs:
        content = hashlib.sha1((data_dir / job.row["path"]).read_bytes()).hexdigest()
        old = hashlib.sha1(f"{FEATURE_VERSION}|512|{content}|gain=0.000".encode()).hexdigest()
        assert old in files
    # A re-run reads both from the cache: nothing is featurized again.
    calls = _call_sizes(monkeypatch)
    again = build_tables(jobs, data_dir=data_dir, specs=[HALF], cache_dir=tmp_path, n_jobs=1)
    assert calls == [] and set(again) == {"512/256"}
    np.testing.assert_array_equal(again["512/256"].X, b.X)
    assert fit.table_key(Spectral(HALF)) == "512/256" and fit.table_key(Spectral(QUARTER)) == 512
    np.testing.assert_array_equal(fit.joined(tables, (Spectral(HALF),)).X, b.X)


def test_training_gives_each_model_its_own_hop():
    inputs = train_cli._inputs(None, None, gender_hop=256, sound_hop=256)
    # The gender model keeps to the columns before the song ones; the sound model takes them all.
    assert inputs[GENDER][0] == Spectral(HALF, tuple(F.BASE_FEATURES))
    assert inputs[SOUND_TYPE][0] == Spectral(F.FeatureSpec(1024))
    assert train_cli._inputs(None, None, gender_hop=128)[GENDER][0].spec == QUARTER
    assert train_cli._spectral_specs([*inputs[SOUND_TYPE], *inputs[GENDER]]) == (F.FeatureSpec(1024), HALF)
    assert train_cli._inputs(None, None, sound_hop=512)[SOUND_TYPE][0] == Spectral(F.FeatureSpec(1024, hop=512))
    with pytest.raises(ParameterError):
        train_cli._inputs(None, None, gender_hop=300)
