"""A stream in a child process: the spectral analyses on their own cores.

The streams of one pass (see :mod:`dramapic_subs.representations`) are many
small numpy calls that hold the GIL, so threads barely overlap them (one
thread analyses 10 minutes in 2.7 s, the threaded pass in 2.3 s for 50%
more CPU). :class:`ChildStream` runs a stream in a forked child and offers
its ``push``/``finish``: the pipeline's thread pool keeps calling them, and
the calling thread waits on the pipe, GIL released, while the child computes.

Fork, not spawn: the models and numpy are already loaded, so a child starts
in milliseconds and is made from a closure (nothing pickled but blocks and
rows); spawn or forkserver would import scipy again (~0.5 s). Children die
with their :class:`ChildStreams` group (its ``with`` block ends normally, by
an error or by Ctrl-C), and with the parent process: they block on their
pipe, which the parent's death closes.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import traceback
from multiprocessing.connection import Connection
from typing import Any, Callable

from .errors import DramapicError
from .features import _SingleThreadedBlas

# Below this length a file is analysed in one process: forking and feeding the
# children costs ~10 ms, a 10 s clip's analysis ~60 ms (measured in
# benchmarks/RESULTS.md, "Streams in child processes").
MIN_DURATION_S = 20.0
JOIN_S = 2.0  # a child that has been told to stop and has not within this is killed


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


class ChildStreams:
    """The child processes of one pass; use as a context manager.

    While open, this process's OpenBLAS runs single-threaded, as it would
    with a featurizer in process (the streams left here, the VAD and the
    encoder, ran that way beside them, and so do the children: the same
    rows, bit for bit).
    """

    def __init__(self) -> None:
        self._children: list[ChildStream] = []
        self._ctx = multiprocessing.get_context("fork")

    def __enter__(self) -> "ChildStreams":
        _SingleThreadedBlas.acquire()
        return self

    def __exit__(self, *exc) -> None:
        try:
            for child in self._children:
                child.close()
        finally:
            _SingleThreadedBlas.release()

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
        process = self._ctx.Process(target=_serve, args=(make, child_end, parent_end, inherited),
                                    name=f"dramapic {name}", daemon=True)
        process.start()
        child_end.close()  # else this process's copy hides the child's death (no EOF)
        child = ChildStream(process, parent_end, name)
        self._children.append(child)
        return child


class ChildStream:
    """A stream computed in a child process, with the stream's ``push(*args)`` / ``finish(*args)``."""

    def __init__(self, process: multiprocessing.process.BaseProcess, conn: Connection, name: str) -> None:
        self._process, self._conn, self.name = process, conn, name

    def push(self, *args: Any) -> Any:
        return self._call("push", args)

    def finish(self, *args: Any) -> Any:
        out = self._call("finish", args)
        self._process.join(JOIN_S)  # the child exits after finish
        return out

    def _call(self, method: str, args: tuple) -> Any:
        try:
            self._conn.send((method, args))
            status, value, trace = self._conn.recv()  # blocks without the GIL
        except (EOFError, OSError) as exc:
            self._process.join(JOIN_S)
            code = self._process.exitcode
            how = (f"was killed by signal {-code}" if code is not None and code < 0
                   else f"exited with status {code}" if code is not None else "stopped answering")
            raise WorkerError(f"the analysis process for {self.name} {how}"
                              + (" (out of memory?)" if code == -signal.SIGKILL else "")) from exc
        if status == "error":
            if not isinstance(value, DramapicError):  # a bug: keep where it happened
                value.add_note(f"in the analysis process for {self.name}:\n{trace}")
            raise value
        return value

    def close(self) -> None:
        """Stop the child: closing the pipe ends its loop; a child busy past ``JOIN_S`` is killed."""
        self._conn.close()
        self._process.join(JOIN_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._process.close()


def _serve(make: Callable[[], Any], conn: Connection, parent_end: Connection, inherited: list[Connection]) -> None:
    """The child: make the stream, answer calls until ``finish``, an error or the parent's end of the pipe."""
    # Ctrl-C reaches the whole process group: the parent handles it and closes
    # the pipe; a traceback from every child would only bury its message.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent_end.close()
    for other in inherited:
        other.close()
    _SingleThreadedBlas.acquire()  # inherited from the group, held for good (the process ends with its stream)
    try:
        stream = make()
        while True:
            try:
                method, args = conn.recv()
            except EOFError:  # the parent closed the pipe or died
                return
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
