"""A stream in a child process: the spectral analyses on their own cores.

The streams of one pass (see :mod:`dramapic_subs.representations`) are many
small numpy calls that hold the GIL, so threads barely overlap them (one
thread analyses 10 minutes in 2.7 s, the threaded pass in 2.3 s for 50%
more CPU). :class:`ChildStream` runs a stream in a forked child and offers
its ``push``/``finish``: the pipeline's thread pool keeps calling them, and
the calling thread waits on the pipe, GIL released, while the child computes.

Fork, not spawn: the models and numpy are already loaded, so a child starts
in milliseconds and is made from a closure (nothing pickled but rows);
spawn or forkserver would import scipy again (~0.5 s). Blocks of audio go
through memory shared at the fork (:class:`BlockRing`), not through the
pipe: pickled, piped and unpickled, a 30 s block cost each child and the
parent ~4.5 ms of CPU: 5-6% of the analysis with two children. Children die
with their :class:`ChildStreams` group (its ``with`` block ends normally, by
an error or by Ctrl-C), and with the parent process: they block on their
pipe, which the parent's death closes.
"""
from __future__ import annotations

import mmap
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import traceback
from collections import deque
from multiprocessing.connection import Connection
from typing import Any, Callable, Generator, Iterator

import numpy as np

from .errors import DramapicError
from .features import _SingleThreadedBlas

# Below this a file is analysed in one process: a child costs ~10 ms to start
# and gains only once blocks follow one another (30 s each: see
# pipeline.BLOCK_S); clips of 1-120 s measured no faster in children
# (benchmarks/RESULTS.md, "Streams in child processes").
MIN_DURATION_S = 120.0
JOIN_S = 2.0  # a child that has been told to stop and has not within this is killed
RING_SLOTS = 4  # blocks in shared memory at once: fed_ahead keeps at most two unanswered per child


class WorkerError(DramapicError):
    """A stream's child process died (killed, out of memory) before answering."""


def worth_it(duration_s: float) -> bool:
    """Whether a file of ``duration_s`` seconds gains from child processes on this machine.

    Not for short clips (start-up outweighs the gain), nor on one core, nor
    where fork is unavailable or not allowed (a daemonic process, such as a
    multiprocessing pool's worker, may not have children).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return (duration_s >= MIN_DURATION_S and cores > 1
            and "fork" in multiprocessing.get_all_start_methods()
            and not multiprocessing.current_process().daemon)


class BlockRing:
    """Slots of float32 audio in memory shared with the children forked after it is made.

    The parent writes a block into a free slot and sends the children only
    its slot and length; each child copies it out before answering for it,
    and the parent frees the slot once every child has answered.

    Parameters
    ----------
    slots : int
        Blocks held at once.
    capacity : int
        Samples per slot.
    """

    def __init__(self, slots: int, capacity: int) -> None:
        self._memory = mmap.mmap(-1, slots * capacity * 4)  # anonymous and MAP_SHARED: forked children see it
        self._blocks = np.frombuffer(self._memory, np.float32).reshape(slots, capacity)
        self._readers = [0] * slots  # children that have yet to answer for each slot's block
        self._next = 0

    def put(self, block: np.ndarray, *, readers: int) -> int | None:
        """Copy ``block`` into the next slot; its index, or None if the block does not fit (too long, not
        1-D float32) or the slot is still being read (the block then goes through the pipe)."""
        slot = self._next
        if (readers == 0 or self._readers[slot] or block.ndim != 1 or block.dtype != np.float32
                or len(block) > self._blocks.shape[1]):
            return None
        self._blocks[slot, :len(block)] = block
        self._readers[slot] = readers
        self._next = (slot + 1) % len(self._readers)
        return slot

    def release(self, slot: int) -> None:
        """One child has answered for the block in ``slot`` (parent side)."""
        self._readers[slot] -= 1

    def get(self, slot: int, n: int) -> np.ndarray:
        """A copy of the first ``n`` samples in ``slot`` (child side): the slot is reused once answered."""
        return self._blocks[slot, :n].copy()


def _stream_name(card: dict) -> str:
    """A child's name in messages, e.g. ``spectral 512 hop 256``: two spectral streams may share an n_fft."""
    name = " ".join(str(card[k]) for k in ("kind", "n_fft") if k in card)
    return f"{name} hop {card['hop']}" if "hop" in card else name


class ChildStreams:
    """The child processes of one pass; use as a context manager.

    While open, this process's OpenBLAS runs single-threaded, as it would
    with a featurizer in process (the streams left here, the VAD and the
    encoder, ran that way beside them, and so do the children: the same
    rows, bit for bit).

    Parameters
    ----------
    enabled : bool
        False: :meth:`stream` makes every stream in this process.
    block_samples : int
        The longest block (samples) handed over through shared memory; longer
        ones, and any block when 0, go through the pipe.
    """

    def __init__(self, *, enabled: bool = True, block_samples: int = 0) -> None:
        self.enabled = enabled
        self._children: list[ChildStream] = []
        self._ctx = multiprocessing.get_context("fork")
        self._ring = BlockRing(RING_SLOTS, block_samples) if enabled and block_samples > 0 else None

    def __enter__(self) -> "ChildStreams":
        _SingleThreadedBlas.acquire()
        return self

    def __exit__(self, *exc) -> None:
        try:
            for child in self._children:
                child.close()
        finally:
            _SingleThreadedBlas.release()

    def stream(self, rep: Any, grid: Any) -> Any:
        """``rep.stream(grid)``: in a child process if enabled and the input asks for one (``own_process``)."""
        if not self.enabled or not getattr(rep, "own_process", False):
            return rep.stream(grid)
        return self.start(lambda: rep.stream(grid), name=_stream_name(rep.card()))

    def fed_ahead(self, blocks: Generator) -> Iterator:
        """The blocks, each yielded once the next one has been fed to the child streams.

        So a child starts on block k + 1 as soon as it is done with block k,
        instead of idling until every stream has answered for block k (three
        streams of unequal cost on two cores leave a core idle part of every
        block).
        """
        if not self._children:
            yield from blocks
            return
        previous = None
        try:
            for block in blocks:
                slot = self._ring.put(block, readers=len(self._children)) if self._ring else None
                for child in self._children:
                    child.feed(block, slot)
                if previous is not None:
                    yield previous
                previous = block
            if previous is not None:
                yield previous
        finally:
            blocks.close()

    def start(self, make: Callable[[], Any], *, name: str) -> "ChildStream":
        """Fork a child that makes its stream with ``make()`` and serves ``push``/``finish`` calls.

        Start every child before any other thread of the pass (the prefetch
        reader, the pool): a fork copies only the calling thread, and a lock
        another thread held would stay held in the child.
        """
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        # A child keeps only its own pipe: with an earlier child's parent end
        # open in it, that child would not see EOF when this process dies.
        inherited = [c._conn for c in self._children]
        process = self._ctx.Process(target=_serve, args=(make, child_end, parent_end, inherited, self._ring),
                                    name=f"dramapic {name}", daemon=True)
        process.start()
        child_end.close()  # else this process's copy hides the child's death (no EOF)
        child = ChildStream(process, parent_end, name, self._ring)
        self._children.append(child)
        return child


class ChildStream:
    """A stream computed in a child process, with the stream's ``push(*args)`` / ``finish(*args)``.

    :meth:`feed` hands a block over before its rows are wanted: the child
    starts on it at once instead of idling until every other stream has
    answered for the block before.
    """

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection, name: str,
                 ring: "BlockRing | None" = None) -> None:
        self._process, self._conn, self.name, self._ring = process, conn, name, ring
        self._fed: deque = deque()  # (block, ring slot or None) sent, their rows not yet read

    def feed(self, block: Any, slot: int | None = None) -> None:
        """Send ``block`` now (by its ``slot`` in the shared ring, where it has one); ``push(block)``
        later returns its rows. Blocks go in stream order."""
        if slot is None:
            self._send("push", (block,))
        else:
            self._send("push_slot", (slot, len(block)))
        self._fed.append((block, slot))

    def push(self, *args: Any) -> Any:
        slot = None
        if self._fed and self._fed[0][0] is args[0]:
            slot = self._fed.popleft()[1]
        else:
            self._send("push", args)
        out = self._receive()
        if slot is not None:
            self._ring.release(slot)  # the child copied the block before it answered
        return out

    def finish(self, *args: Any) -> Any:
        self._send("finish", args)
        out = self._receive()
        self._process.join(JOIN_S)  # the child exits after finish
        return out

    def _send(self, method: str, args: tuple) -> None:
        try:
            self._conn.send((method, args))  # quick: the child's reader takes it off the pipe
        except OSError as exc:
            # A child that failed on a block fed ahead has left its error in the pipe: that is the news.
            while self._conn.poll():
                self._receive()
            raise self._died() from exc

    def _receive(self) -> Any:
        try:
            status, value, trace = self._conn.recv()  # blocks without the GIL
        except (EOFError, OSError) as exc:
            raise self._died() from exc
        if status == "error":
            if not isinstance(value, DramapicError):  # a bug: keep where it happened
                value.add_note(f"in the analysis process for {self.name}:\n{trace}")
            raise value
        return value

    def _died(self) -> WorkerError:
        """The error for a child that closed its pipe without answering."""
        self._process.join(JOIN_S)
        code = self._process.exitcode
        how = (f"was killed by signal {-code}" if code is not None and code < 0
               else f"exited with status {code}" if code is not None else "stopped answering")
        return WorkerError(f"the analysis process for {self.name} {how}"
                           + (" (out of memory?)" if code == -signal.SIGKILL else ""))

    def close(self) -> None:
        """Stop the child: closing the pipe ends its loop; a child busy past ``JOIN_S`` is killed."""
        self._conn.close()
        self._process.join(JOIN_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._process.close()


def _serve(make: Callable[[], Any], conn: Connection, parent_end: Connection, inherited: list[Connection],
           ring: "BlockRing | None" = None) -> None:
    """The child: make the stream, answer calls until ``finish``, an error or the parent's end of the pipe."""
    # Ctrl-C reaches the whole process group: the parent handles it and closes
    # the pipe; a traceback from every child would only bury its message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent_end.close()
    for other in inherited:
        other.close()
    _SingleThreadedBlas.acquire()  # inherited from the group, held for good (the process ends with its stream)
    requests: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_read, args=(conn, requests), daemon=True).start()
    try:
        stream = make()  # in this (the forked) thread, which also computes: see _SingleThreadedBlas
        while (request := requests.get()) is not None:  # None: the parent closed the pipe or died
            method, args = request
            if method == "push_slot":  # the block waits in the shared ring: copy it out before answering
                method, args = "push", (ring.get(*args),)
            try:
                value = getattr(stream, method)(*args)
            except Exception as exc:
                _send_error(conn, exc)
                return
            conn.send(("ok", value, None))
            if method == "finish":
                return
    except Exception as exc:  # making the stream failed, or the parent left mid-answer
        _send_error(conn, exc)


def _read(conn: Connection, requests: queue.SimpleQueue) -> None:
    """Take the requests off the pipe as they come, so the parent's send of a block fed ahead never waits."""
    try:
        while True:
            requests.put(conn.recv())
    except (EOFError, OSError):
        requests.put(None)


def _send_error(conn: Connection, exc: Exception) -> None:
    trace = traceback.format_exc()
    try:
        pickle.dumps(exc)
    except Exception:  # an exception that cannot cross the pipe: its text can
        exc = RuntimeError(f"{type(exc).__name__}: {exc}")
    try:
        conn.send(("error", exc, trace))
    except OSError:  # the parent is gone
        pass
