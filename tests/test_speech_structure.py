"""Silero VAD in numpy, speech turns and calibration, on real dev speech and signals with known answers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dramapic_subs.errors import ModelError
from dramapic_subs.models import calibrate, default_models_dir
from dramapic_subs.representations import from_card, silero_from_file
from dramapic_subs.train.calibration import fit_temperature, reliability
from dramapic_subs.turns import TurnModel, change_scores, find_turns, make_turns, mean_log_odds, split_points
from dramapic_subs.vad import VAD_FEATURES, SileroWeights, VadStream, chunk_proba, pool, vad_windows
from dramapic_subs.windows import make_grid

from .conftest import SR, dev_audio, tone, white_noise

GRID = make_grid(sr=SR, window_s=2.0, hop_s=1.0)
MEAN, ACTIVE = VAD_FEATURES.index("vad_mean"), VAD_FEATURES.index("vad_active")


@pytest.fixture(scope="module")
def weights() -> SileroWeights:
    return SileroWeights.load(default_models_dir() / "silero_vad.npz")


def test_vad_hears_speech_and_not_tones_noise_or_clicks(weights, data_dir):
    speech = vad_windows(dev_audio(data_dir, "librispeech_resemblyzer", 10.0), weights=weights, grid=GRID).X
    clicks = np.zeros(8 * SR, np.float32)
    clicks[:: SR // 5] = 0.8  # a click train at 5 Hz: syllable rate, but no voice
    for y in (tone(8.0), white_noise(8.0), clicks):
        other = vad_windows(y, weights=weights, grid=GRID).X
        assert other[:, MEAN].max() < 0.3
    assert np.median(speech[:, MEAN]) > 0.7 and np.median(speech[:, ACTIVE]) > 0.6


def test_vad_gives_the_same_windows_however_the_stream_is_cut(weights, data_dir):
    y = np.concatenate([dev_audio(data_dir, "emotiontts_open_db", 6.3), white_noise(2.1)])
    whole = vad_windows(y, weights=weights, grid=GRID)
    stream = VadStream(weights, GRID)
    parts = [stream.push(y[i:i + 7777]) for i in range(0, len(y), 7777)] + [stream.finish()]
    X = np.vstack([p.X for p in parts])
    np.testing.assert_array_equal(np.concatenate([p.index for p in parts]), whole.index)
    np.testing.assert_allclose(X, whole.X, atol=1e-5)
    assert len(whole.index) == GRID.n_cues(len(y))
    assert len(chunk_proba(y, weights=weights)) == -(-len(y) // 512)


def _silero_reference(y: np.ndarray, weights: SileroWeights) -> np.ndarray:
    """Silero's 16 kHz network written out plainly in float64 from its PyTorch-layout weights:
    the STFT as the model's own conv basis, convolutions with explicit padding, the LSTM cell in
    PyTorch's gate order, state carried over the whole signal."""
    a = {k: v.astype(np.float64) for k, v in weights.arrays.items()}
    n = -(-len(y) // 512)
    x = np.concatenate([np.zeros(64), y, np.zeros(n * 512 - len(y))])
    chunks = np.stack([x[i * 512:i * 512 + 576] for i in range(n)])
    chunks = np.concatenate([chunks, chunks[:, 574:510:-1]], axis=1)  # torch's reflect pad by 64
    frames = np.stack([chunks[:, k * 128:k * 128 + 256] for k in range(4)], axis=1)
    spec = frames @ a["stft_conv.weight"][:, 0].T                      # (n, 4, 258): real, imaginary
    h = np.sqrt(spec[..., :129] ** 2 + spec[..., 129:] ** 2)

    def conv(h: np.ndarray, name: str, stride: int) -> np.ndarray:
        w, b = a[f"{name}.weight"], a[f"{name}.bias"]
        hp = np.pad(h, ((0, 0), (1, 1), (0, 0)))
        out = [sum(hp[:, t + k] @ w[:, :, k].T for k in range(3)) + b for t in range(0, h.shape[1], stride)]
        return np.maximum(np.stack(out, axis=1), 0.0)

    h = conv(conv(conv(conv(h, "conv1", 1), "conv2", 2), "conv3", 2), "conv4", 1)[:, 0]

    def sigmoid(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))

    hid, cell, out = np.zeros(128), np.zeros(128), np.empty(n)
    for t in range(n):
        g = h[t] @ a["lstm_cell.weight_ih"].T + a["lstm_cell.bias_ih"] + hid @ a["lstm_cell.weight_hh"].T + a["lstm_cell.bias_hh"]
        i, f, c, o = np.split(g, 4)
        cell = sigmoid(f) * cell + sigmoid(i) * np.tanh(c)
        hid = sigmoid(o) * np.tanh(cell)
        out[t] = sigmoid(np.maximum(hid, 0.0) @ a["final_conv.weight"][0, :, 0] + a["final_conv.bias"][0])
    return out


def test_vad_matches_a_plain_float64_silero_on_real_speech(weights, data_dir):
    # 40 s of speech, speech with noise, and song: the fast runner (views, reordered gates, in-place
    # steps, 30 s blocks) must compute Silero's network, up to float32 rounding.
    y = np.concatenate([dev_audio(data_dir, "librispeech_resemblyzer", 15.0), 0.5 * dev_audio(data_dir, "emodb", 10.0)
                        + white_noise(10.0), dev_audio(data_dir, "mir1k_mix", 15.0)])
    stream = VadStream(weights, GRID)
    got = vad_windows(y, weights=weights, grid=GRID)
    parts = [stream.push(y[i:i + 30 * SR]) for i in range(0, len(y), 30 * SR)] + [stream.finish()]
    np.testing.assert_allclose(np.vstack([p.X for p in parts]), got.X, atol=1e-5)
    want = _silero_reference(y, weights)
    p = chunk_proba(y, weights=weights)
    assert np.abs(p - want).max() < 1e-4 and 0.1 < (want > 0.5).mean() < 0.9
    X = np.array([pool(want[a // 512:-(-b // 512)].astype(np.float32))
                  for a, b in (GRID.span(i, len(y)) for i in range(GRID.n_cues(len(y))))])
    np.testing.assert_allclose(got.X, X, atol=1e-4)


def test_vad_weights_are_hash_checked(tmp_path):
    src = default_models_dir() / "silero_vad.npz"
    rep = silero_from_file(src)
    (tmp_path / "silero_vad.npz").write_bytes(src.read_bytes())
    assert from_card(rep.card(), directory=tmp_path).key == rep.key
    data = bytearray(src.read_bytes())
    data[-10] ^= 1
    (tmp_path / "silero_vad.npz").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        from_card(rep.card(), directory=tmp_path)
    with pytest.raises(ModelError, match="unknown kind"):
        from_card({"kind": "wav2vec"}, directory=tmp_path)


def _turn_model(threshold: float) -> TurnModel:
    return TurnModel(np.array([0, 1]), np.zeros(2), np.ones(2), threshold)


def test_turns_split_where_the_voice_changes_and_average_gender():
    # Two speakers: 6 windows near (0, 0), then 5 near (3, 3); one window of silence after.
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 0.2, (6, 2)), rng.normal(3, 0.2, (5, 2)), np.zeros((1, 2))])
    voice = np.r_[np.ones(11, bool), False]
    gender = np.vstack([np.tile([0.8, 0.2], (6, 1)), np.tile([0.3, 0.7], (5, 1)), [[np.nan, np.nan]]])
    gender[2] = [0.4, 0.6]  # one window of the first speaker flips: the turn keeps her gender
    scores = change_scores(X, _turn_model(1.0))
    assert np.nanargmax(scores) == 6
    spans = find_turns(voice, X, model=_turn_model(1.0))
    assert spans == [(0, 5), (6, 10)]
    turns = make_turns(spans, gender, ["female", "male"], np.arange(12.0), np.arange(1.0, 13.0))
    assert turns[0].gender["female"] > 0.7 and turns[1].label == "male" and (turns[1].start_s, turns[1].end_s) == (6, 11)
    assert find_turns(voice, X, model=None) == [(0, 10)]
    # Without voice columns, a change of gender that holds still splits the turn; one stray window does not.
    assert find_turns(voice, None, model=None, gender_proba=gender) == [(0, 5), (6, 10)]
    assert split_points(np.array([np.nan, 0.5, 2.0, 1.5, np.nan]), threshold=1.0).tolist() == [2]
    np.testing.assert_allclose(mean_log_odds(np.array([[0.9, 0.1], [0.1, 0.9]])), [0.5, 0.5])


def test_cosine_turns_split_where_the_embedding_turns_not_where_it_fades():
    # Unit embeddings of two voices at right angles; the first voice's last window is half as loud
    # (a scaled vector, as where an embedding is interpolated): only the direction counts.
    rng = np.random.default_rng(0)
    a, b = np.eye(8)[0], np.eye(8)[1]
    X = np.vstack([a + rng.normal(0, 0.05, (6, 8)), b + rng.normal(0, 0.05, (5, 8)), np.zeros((2, 8))])
    X[5] *= 0.5
    model = TurnModel(np.arange(8), np.zeros(8), np.ones(8), 0.3, metric="cosine")
    scores = change_scores(X, model)
    assert np.nanargmax(scores) == 6 and scores[6] > 0.8 and np.nanmax(scores[[2, 3, 4, 8, 9]]) < 0.1
    assert np.isnan(scores[-1])  # its context after is all zeros: no embedding, no judgement
    voice = np.r_[np.ones(11, bool), False, False]
    assert find_turns(voice, X, model=model) == [(0, 5), (6, 10)]
    card = model.card([f"spk{i}" for i in range(8)])
    assert card["metric"] == "cosine" and TurnModel.from_card(card, [f"spk{i}" for i in range(8)]).metric == "cosine"
    del card["metric"]  # a card written before the cosine metric reads as RMS
    assert TurnModel.from_card(card, [f"spk{i}" for i in range(8)]).metric == "rms"


def test_speaker_embedding_stream_embeds_every_stride_th_window_and_fills_the_rest(data_dir):
    from dramapic_subs.embedding import EmbeddingStream, EmbeddingWindows, load_encoder

    encoder = load_encoder()
    y = np.concatenate([dev_audio(data_dir, "emodb", 6.0, gender="female"), dev_audio(data_dir, "emodb", 5.5, gender="male")])

    def run(stride: int, step: int) -> EmbeddingWindows:
        stream = EmbeddingStream(encoder, GRID, stride=stride)
        return EmbeddingWindows.concat([stream.push(y[i:i + step]) for i in range(0, len(y), step)] + [stream.finish()])

    every, strided, cut = run(1, len(y)), run(4, len(y)), run(4, 20011)
    n = GRID.n_cues(len(y))
    assert len(every.X) == len(strided.X) == n and (strided.index == np.arange(n)).all()
    np.testing.assert_allclose(cut.X, strided.X, atol=1e-5)  # however the stream is cut
    np.testing.assert_allclose(strided.X[::4], every.X[::4], atol=1e-5)
    np.testing.assert_allclose(strided.X[-1], every.X[-1], atol=1e-5)  # the last window is embedded itself
    embedded = sorted(set(range(0, n, 4)) | {n - 1})
    for i in range(n):  # every other window takes its nearest embedded neighbour's, or both's mean on a tie
        gap = min(abs(k - i) for k in embedded)
        near = [k for k in embedded if abs(k - i) == gap]
        want = every.X[near].sum(axis=0)
        np.testing.assert_allclose(strided.X[i], want / np.linalg.norm(want), atol=1e-5)


def test_temperature_scaling_fixes_overconfidence():
    rng = np.random.default_rng(1)
    n = 4000
    y = rng.integers(0, 3, n)
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), y] += 1.0
    proba = calibrate(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), temperature=1 / 3)  # sharpened 3x
    before = reliability(proba, y)["ece"]
    t = fit_temperature(proba, y)
    after = reliability(calibrate(proba, temperature=t), y)["ece"]
    assert 2.3 < t < 3.7 and after < 0.03 < before
    r = reliability(np.array([[0.95, 0.05], [0.95, 0.05]]), np.array([0, 1]))
    assert r["ece"] == pytest.approx(0.45) and r["count"] == [2]


def test_shipped_sound_model_uses_the_vad_and_gender_model_has_turns():
    cards = {n: json.loads((default_models_dir() / f"{n}.json").read_text()) for n in ("sound_type", "gender")}
    assert [i["kind"] for i in cards["sound_type"]["inputs"]] == ["spectral", "silero_vad"]
    assert cards["sound_type"]["inputs"][0]["n_fft"] == 1024 and cards["gender"]["inputs"][0]["n_fft"] == 512
    assert [i["kind"] for i in cards["gender"]["inputs"]] == ["spectral", "speaker_embedding"]
    assert cards["gender"]["inputs"][1]["stride"] >= 1
    assert 0 < cards["gender"]["inputs"][1]["refine"] < 1  # fit sets it (turn_model.refine_threshold)
    assert cards["gender"]["turns"]["threshold"] > 0
    for card in cards.values():
        assert 0.25 <= card["temperature"] <= 8


def _stream_gated(stream, y: np.ndarray, wanted: np.ndarray, *, block: int):
    """Push ``y`` in blocks, each window's decision told a little behind the audio, as in the pipeline."""
    told, n = 0, len(wanted)
    for i in range(0, len(y), block):
        part = y[i:i + block]
        known = min(n - 1, max(0, (i + len(part)) // SR - 2))
        stream.push(part, wanted[told:known])
        told = known
    return stream.finish(wanted[told:])


def test_gated_embeddings_follow_the_plan_and_stay_inside_each_voiced_run(data_dir):
    from dramapic_subs.embedding import EmbeddingStream, EmbeddingWindows, VoicedEmbeddingStream, embedding_plan, load_encoder

    wanted = np.array([0, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1], bool)
    plan = embedding_plan(wanted, stride=2)
    assert plan == [(), (1,), (1, 3), (3,), (4,), (), (), (7,), (8,), (), (10,)]
    encoder = load_encoder()
    y = dev_audio(data_dir, "emotiontts_open_db", 10.6)
    n = GRID.n_cues(len(y))
    wanted = np.r_[wanted, np.zeros(n - len(wanted), bool)]
    got = _stream_gated(VoicedEmbeddingStream(encoder, GRID, stride=2), y, wanted, block=30011)
    full = EmbeddingStream(encoder, GRID)
    every = EmbeddingWindows.concat([full.push(y), full.finish()]).X
    assert len(got.X) == n and not got.X[~wanted].any()  # no voice, no embedding (and no cost)
    np.testing.assert_allclose(got.X[[1, 3, 4, 7, 8, 10]], every[[1, 3, 4, 7, 8, 10]], atol=1e-5)
    mean = every[1] + every[3]
    np.testing.assert_allclose(got.X[2], mean / np.linalg.norm(mean), atol=1e-5)


@pytest.mark.parametrize("batch", [1, 3, 64])
def test_gated_embeddings_refine_between_neighbours_whose_voices_differ(data_dir, batch, monkeypatch):
    import dramapic_subs.embedding
    from dramapic_subs.embedding import (EmbeddingStream, EmbeddingWindows, VoicedEmbeddingStream, cosine_distance,
                                         embedding_plan, load_encoder, planned_rows, refined_points)

    # A woman then a man, no pause: one voiced run across the change. With stride 2 the window
    # between the last point of one voice and the first of the other took both's mean before.
    # The stream embeds in batches of ``batch`` ready windows (the rest at the end): the same rows.
    monkeypatch.setattr(dramapic_subs.embedding, "GATED_BATCH", batch)
    y = np.concatenate([dev_audio(data_dir, "emotiontts_open_db", 7.0, gender="female"),
                        dev_audio(data_dir, "librispeech_resemblyzer", 7.0, gender="male")])
    encoder = load_encoder()
    full = EmbeddingStream(encoder, GRID)
    every = EmbeddingWindows.concat([full.push(y), full.finish()]).X
    n = len(every)
    wanted = np.ones(n, bool)
    dist = cosine_distance(every[:-2], every[2:])
    refine = float(np.median(dist))  # about half the neighbouring pairs refined
    points = refined_points(wanted, every, stride=2, refine=refine)
    assert set(range(0, n, 2)) < set(points)
    assert all(dist[p] > refine for p in range(0, n - 2, 2) if p + 1 in points)
    assert refined_points(wanted, every, stride=2, refine=None) == sorted(set(range(0, n, 2)) | {n - 1})
    got = _stream_gated(VoicedEmbeddingStream(encoder, GRID, stride=2, refine=refine), y, wanted, block=24000)
    want = planned_rows(every, embedding_plan(wanted, stride=2, points=points))
    np.testing.assert_allclose(got.X, want, atol=1e-5)
    np.testing.assert_allclose(got.X[points], every[points], atol=1e-5)


@pytest.mark.parametrize("smooth,stops", [(1, True), (3, False), (9, True)])
def test_voice_gate_decides_in_the_stream_what_the_finished_analysis_finds(data_dir, tmp_path, smooth, stops):
    import dataclasses

    import soundfile as sf

    from dramapic_subs.pipeline import analyze, load_models
    from dramapic_subs.voice import ACTIVITY_MIN, VoiceGate, voice_likely

    sound, gender = load_models()
    assert sound.change is not None  # the shipped smoothing stops where the sound changes
    sound = dataclasses.replace(sound, smooth=smooth, change=sound.change if stops else None)
    y = np.concatenate([dev_audio(data_dir, "emotiontts_open_db", 6.0), np.zeros(3 * SR, np.float32),
                        0.3 * white_noise(5.0), tone(4.0), dev_audio(data_dir, "librispeech_resemblyzer", 6.0)])
    streams = {rep.key: rep.stream(GRID) for rep in sound.inputs}
    gate = VoiceGate(sound, level_key=sound.inputs[0].key)
    decided = []
    for i in range(0, len(y), 23999):  # blocks that end mid-window, unlike the pipeline's 30 s
        decided.append(gate.add({k: st.push(y[i:i + 23999]) for k, st in streams.items()}))
    decided.append(gate.add({k: st.finish() for k, st in streams.items()}, final=True))
    got = np.concatenate(decided)
    wav = tmp_path / "mix.wav"
    sf.write(wav, y, SR)
    analysis = analyze(wav, models=[sound, gender])
    expected = voice_likely(analysis.model("sound_type"), analysis.silent, activity=analysis.activity)
    assert expected.any() and not expected.all()  # speech and the rest both present
    assert got.tolist() == expected.tolist()
    # Silero's peak is part of the rule, in the stream as on the finished analysis.
    assert analysis.activity is not None and (analysis.activity[expected] >= ACTIVITY_MIN).all()


def test_turn_fit_scores_embeddings_thinned_as_the_product_makes_them():
    from dramapic_subs.train.turn_model import _as_product

    rng = np.random.default_rng(0)
    E = rng.normal(size=(5, 4))
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    X = np.hstack([np.arange(5.0)[:, None], E])  # a first column that is not an embedding
    out = _as_product(X, np.arange(1, 5), stride=2)
    np.testing.assert_array_equal(out[:, 0], X[:, 0])
    np.testing.assert_allclose(out[[0, 2, 4], 1:], E[[0, 2, 4]])  # embedded: their own
    mid = E[0] + E[2]
    np.testing.assert_allclose(out[1, 1:], mid / np.linalg.norm(mid), rtol=1e-6)  # between two: both, normalised
    np.testing.assert_allclose(_as_product(X, np.arange(1, 5), stride=1), X)
