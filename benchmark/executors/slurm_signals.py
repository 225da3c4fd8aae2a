"""Signals while the ``slurm`` executor submits and waits, so that an interrupted ``bench run`` leaves
the submissions list (``RESULTS/slurm/submissions.jsonl``) holding every job sbatch accepted.

- **SIGHUP** (the terminal closed, an ssh session dropped) stops the submission or the wait as
  Ctrl-C does (:class:`HungUp`, a ``KeyboardInterrupt``: ``bench run`` says "hung up (SIGHUP)" in
  one line and exits 129, 128 + SIGHUP, as SIGTERM exits 143), instead of killing the process where
  it stands. Under ``nohup`` (SIGHUP ignored) it stays ignored. Output to the closed terminal is
  dropped from then on, so that the closing line cannot fail.
- Inside :meth:`Signals.critical` (sbatch is submitting a job until the list holds it) SIGINT,
  SIGTERM and SIGHUP wait until the block ends, then act as they would have: a job sbatch accepted
  is never left out of the list. A second signal in the block acts at once (an sbatch that hangs
  can still be stopped). SIGINT and SIGTERM are held only when a Python handler is installed, as
  ``bench`` installs one for each: a program that embeds the executor and leaves SIGTERM at its
  default is killed by it, mid-submission too.

Outside the main thread (``bench`` embedded in another program) nothing is changed.
"""

from __future__ import annotations

import io
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any, Self, TextIO

Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class HungUp(KeyboardInterrupt):
    """SIGHUP: the terminal of ``bench run`` closed. Stopped like Ctrl-C, but ``bench`` says so and
    exits 129 (128 + SIGHUP, the shell's convention), not Ctrl-C's 130."""

    #: what ``bench`` says and its exit code (read by :func:`benchmark.cli.stopped_by`)
    how = "hung up (SIGHUP)"
    exit_code = 129  # 128 + SIGHUP (1)


class _Tolerant(io.TextIOBase):
    """A text stream that writes to ``stream`` until a write fails (a hung-up terminal answers
    EIO), then drops what it is given."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream: TextIO | None = stream

    def write(self, s: str) -> int:
        if self.stream is not None:
            try:
                self.stream.write(s)
            except OSError:
                self.stream = None
        return len(s)

    def flush(self) -> None:
        if self.stream is not None:
            try:
                self.stream.flush()
            except OSError:
                self.stream = None

    def fileno(self) -> int:
        if self.stream is None:
            raise io.UnsupportedOperation("the stream's terminal hung up")
        return self.stream.fileno()

    def isatty(self) -> bool:
        return False


def _tolerate_hangup() -> None:
    """From now on a failing write to stdout or stderr (the terminal that hung up) is dropped."""
    if not isinstance(sys.stdout, _Tolerant):
        sys.stdout = _Tolerant(sys.stdout)
    if not isinstance(sys.stderr, _Tolerant):
        sys.stderr = _Tolerant(sys.stderr)


class Signals:
    """``with Signals() as sig: ... with sig.critical(): submit and record``: see the module doc."""

    NAMES = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self.previous: dict[int, Handler] = {}
        self.depth = 0
        self.pending: tuple[int, FrameType | None] | None = None

    def __enter__(self) -> Self:
        for name in self.NAMES:
            sig = getattr(signal, name, None)
            if sig is None:  # not on this platform (SIGHUP on Windows)
                continue
            current = signal.getsignal(sig)
            if sig != signal.SIGHUP and not callable(current):  # ignored or the default: leave it so
                continue
            if sig == signal.SIGHUP and current == signal.SIG_IGN:  # nohup: the terminal's end is not ours to act on
                continue
            try:
                signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                return self
            self.previous[sig] = current
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()

    @contextmanager
    def critical(self) -> Iterator[None]:
        """Signals wait until the block ends (then act); a second one acts at once."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if self.depth == 0 and self.pending is not None:
                signum, frame = self.pending
                self.pending = None
                self._act(signum, frame)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            _tolerate_hangup()
        if self.depth and self.pending is None:
            self.pending = (signum, frame)
            return
        self._act(signum, frame)

    def _act(self, signum: int, frame: FrameType | None) -> None:
        previous = self.previous.get(signum)
        if signum == signal.SIGHUP and not callable(previous):
            raise HungUp("the terminal hung up (SIGHUP)")
        if callable(previous):
            previous(signum, frame)  # Ctrl-C's KeyboardInterrupt, bench's SIGTERM handler...
