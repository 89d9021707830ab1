"""Streams in child processes (dramapic_subs.workers): the same rows as in process, and no child left behind."""
from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from dramapic_subs import pipeline
from dramapic_subs.errors import DramapicError
from dramapic_subs.features import StreamFeaturizer
from dramapic_subs.pipeline import analyze, load_models
from dramapic_subs.progress import Progress
from dramapic_subs.representations import shared_inputs
from dramapic_subs.windows import make_grid
from dramapic_subs.workers import ChildStreams, WorkerError, worth_it

from .conftest import SR, mux, tone, white_noise

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")


@pytest.fixture(scope="module")
def models():
    return load_models()


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory, ffmpeg):
    """65 s (three decode blocks, the last one short) of tones, noise and silence; no labelled data needed."""
    y = np.concatenate([tone(20.0, 220.0), np.zeros(5 * SR, np.float32), white_noise(20.0), tone(20.0, 330.0)])
    return mux(ffmpeg, y, tmp_path_factory.mktemp("workers") / "long.mp4")


def _pass(path, models, *, processes: bool) -> dict:
    reps = shared_inputs(rep for m in models for rep in m.inputs)
    feats, n, _ = pipeline._stream_pass(path, reps, models, make_grid(sr=SR), ffmpeg=pipeline.find_ffmpeg(None),
                                        progress=Progress(quiet=True), total_s=0.0, processes=processes)
    return {key: (f, n) for key, f in feats.items()}


def _assert_children_gone() -> None:
    """No stream child alive (joblib's reusable workers from other tests may be)."""
    assert [p for p in multiprocessing.active_children() if p.name.startswith("dramapic ")] == []


@pytest.mark.parametrize("clip", ["long_clip", "drama"])
def test_child_processes_give_the_same_rows_bit_for_bit(request, models, clip):
    made = request.getfixturevalue(clip)
    path = getattr(made, "path", made)  # a conftest Clip or a path
    here, there = _pass(path, models, processes=False), _pass(path, models, processes=True)
    assert here.keys() == there.keys()
    for key, (a, n_a) in here.items():
        b, n_b = there[key]
        assert n_a == n_b
        np.testing.assert_array_equal(a.index, b.index)
        assert a.X.dtype == b.X.dtype and a.X.tobytes() == b.X.tobytes(), key  # NaN-safe, bit for bit
        if hasattr(a, "level_db"):
            assert a.level_db.tobytes() == b.level_db.tobytes()
    one, two = analyze(path, models=models, processes=False), analyze(path, models=models, processes=True)
    for m1, m2 in zip(one.models, two.models):
        assert m1.proba.tobytes() == m2.proba.tobytes(), m1.name
    assert one.turns == two.turns
    _assert_children_gone()


def test_an_error_in_a_child_is_raised_with_its_traceback_and_no_child_is_left(models, long_clip, monkeypatch):
    parent = os.getpid()
    original = StreamFeaturizer.push

    def failing(self, block):
        if os.getpid() != parent and self.n_samples > 0:  # the second block, in a child only
            raise ValueError("boom in the child")
        return original(self, block)

    monkeypatch.setattr(StreamFeaturizer, "push", failing)
    with pytest.raises(ValueError, match="boom in the child") as info:
        analyze(long_clip, models=models, processes=True)
    assert any("in the analysis process for spectral" in note for note in info.value.__notes__)
    _assert_children_gone()


def test_a_child_killed_mid_analysis_is_a_clear_error_not_a_hang(models, long_clip, monkeypatch):
    parent = os.getpid()
    original = StreamFeaturizer.push

    def dying(self, block):
        if os.getpid() != parent and self.spec.n_fft == 512:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, block)

    monkeypatch.setattr(StreamFeaturizer, "push", dying)
    t0 = time.perf_counter()
    with pytest.raises(WorkerError, match=r"spectral 512 hop \d+ was killed by signal 9") as info:
        analyze(long_clip, models=models, processes=True)
    assert isinstance(info.value, DramapicError)  # the CLI prints it as one line
    assert time.perf_counter() - t0 < 10
    _assert_children_gone()


def test_an_interrupt_in_the_parent_stops_the_children(models, long_clip, monkeypatch):
    def interrupted(self, rows, *, final=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.VoiceGate, "add", interrupted)
    with pytest.raises(KeyboardInterrupt):
        analyze(long_clip, models=models, processes=True)
    _assert_children_gone()


def test_children_die_with_a_killed_parent(tmp_path):
    """A parent killed without any clean-up (SIGKILL) leaves no child waiting on its pipe."""
    script = textwrap.dedent("""
        import os, sys, time
        from dramapic_subs.workers import ChildStreams

        class Slow:
            def push(self, block):
                time.sleep(0.5)
                return block
            def finish(self):
                return None

        with ChildStreams() as children:
            streams = [children.start(Slow, name=f"slow {i}") for i in range(2)]
            print(" ".join(str(s._process.pid) for s in streams), flush=True)
            streams[0].push(1)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie is init's to reap)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_failing_to_make_the_stream_in_the_child_is_raised_here():
    def make():
        raise DramapicError("no such weights")

    with ChildStreams() as children:
        stream = children.start(make, name="broken")
        with pytest.raises(DramapicError, match="no such weights"):
            stream.push(np.zeros(10, np.float32))
    _assert_children_gone()


def test_short_clips_and_busy_workers_stay_in_process():
    assert not worth_it(5.0)
    assert worth_it(600.0) == (len(os.sched_getaffinity(0)) > 1)


class _Echo:
    """A stream whose rows are its blocks, as the child received them."""

    def push(self, block):
        return block

    def finish(self):
        return None


def test_blocks_through_the_shared_ring_arrive_whole_in_order_and_slots_are_reused():
    # More blocks than slots, two children reading each, one block too long for a slot and one
    # of another dtype (both go through the pipe instead), the last block short.
    rng = np.random.default_rng(0)
    blocks = [rng.standard_normal(1000).astype(np.float32) for _ in range(9)]
    blocks[3] = rng.standard_normal(1500).astype(np.float32)
    blocks[5] = blocks[5].astype(np.float64)
    blocks.append(blocks[0][:17].copy())
    with ChildStreams(block_samples=1000) as children:
        streams = [children.start(_Echo, name=f"echo {i}") for i in range(2)]
        got = {0: [], 1: []}
        for block in children.fed_ahead(b for b in blocks):
            for i, st in enumerate(streams):
                got[i].append(st.push(block))
        for st in streams:
            st.finish()
    for i in got:
        assert len(got[i]) == len(blocks)
        for a, b in zip(got[i], blocks):
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    _assert_children_gone()


def test_a_ring_slot_is_not_overwritten_before_every_child_has_read_it():
    from dramapic_subs.workers import BlockRing

    ring = BlockRing(2, 8)
    a, b, c = (np.full(n, v, np.float32) for n, v in ((8, 1.0), (5, 2.0), (3, 3.0)))
    assert ring.put(a, readers=2) == 0
    assert ring.put(b, readers=2) == 1
    assert ring.put(c, readers=2) is None  # slot 0 still has two readers to go
    ring.release(0)
    assert ring.put(c, readers=2) is None  # ... and one
    ring.release(0)
    assert ring.put(c, readers=2) == 0
    np.testing.assert_array_equal(ring.get(1, 5), b)
    np.testing.assert_array_equal(ring.get(0, 3), c)
    assert ring.put(np.zeros(9, np.float32), readers=1) is None  # longer than a slot
    assert ring.put(np.zeros((2, 2), np.float32), readers=1) is None


def test_the_sound_model_predicts_each_window_once_and_as_afresh(models, long_clip, monkeypatch):
    from dramapic_subs.models import ModelBundle

    rows = {}
    original = ModelBundle.predict_windows

    def counting(self, X, *, silent):
        rows[self.name] = rows.get(self.name, 0) + len(X)
        return original(self, X, silent=silent)

    monkeypatch.setattr(ModelBundle, "predict_windows", counting)
    result = analyze(long_clip, models=models, processes=False)
    n = len(result.start_s)
    assert rows["sound_type"] == n  # by the voice gate, block by block; not again at the end
    monkeypatch.setattr(ModelBundle, "predict_windows", original)
    reps = shared_inputs(rep for m in models for rep in m.inputs)
    feats = {key: f for key, (f, _) in _pass(long_clip, models, processes=False).items()}
    sound = next(m for m in models if m.name == "sound_type")
    X = np.hstack([rep.select(feats[rep.key].X) for rep in sound.inputs])
    afresh = pipeline._predict(sound, X, result.silent)
    assert afresh.proba.tobytes() == result.model("sound_type").proba.tobytes()
    assert len(reps) > 0
