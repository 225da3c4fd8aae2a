"""A plugin's failure as the runner handles it: what counts as one, how it reads in a cell's record
and in the run's log, and the shared inputs a plugin must leave as it found them.

A failure fails its cell only (the run goes on); Ctrl-C and a user's error stop the run, so the
runner re-raises those before it catches :data:`PLUGIN_FAILURES`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator

from benchmark.data.dataset import ImageDataset
from benchmark.errors import clip
from benchmark.output_checks import PluginError

#: what a plugin's call may raise that fails its cell (and no more): any exception, and
#: ``sys.exit`` too (a plugin's own crash, not the user stopping the run)
PLUGIN_FAILURES: tuple[type[BaseException], ...] = (Exception, SystemExit)

#: the longest error line the run's log and summary print (as ``bench status`` shows it)
ERROR_LINE_CHARS = 300


def error_text(e: BaseException) -> str:
    """A cell's ``error``: ``call: Type: message``, the message whole (it may run over lines; the
    log and the summary print :func:`error_line` of it). ``call`` is the plugin call that raised
    (:func:`benchmark.output_checks.plugin_call`); a :class:`PluginError` names its plugin already."""
    call = getattr(e, "uebench_call", "")
    where = f"{call}: " if call and not isinstance(e, PluginError) else ""
    msg = str(e).strip()
    return f"{where}{type(e).__name__}: {msg}" if msg else f"{where}{type(e).__name__}"


def error_line(text: str) -> str:
    """The first line of a record's ``error``, at most :data:`ERROR_LINE_CHARS` characters."""
    lines = str(text).strip().splitlines()
    return clip(lines[0].strip(), ERROR_LINE_CHARS) if lines else "failed"


def _digests(data: ImageDataset) -> tuple[str, str]:
    return (hashlib.sha256(data.x.contiguous().numpy().tobytes()).hexdigest(),
            hashlib.sha256(data.y.contiguous().numpy().tobytes()).hexdigest())


@contextlib.contextmanager
def left_alone(data: ImageDataset, who: str, what: str, method: str, forget: Callable[[], None], advice: str) -> Iterator[None]:
    """Run ``who``'s ``method`` on ``data`` (``what``: "the training set", "the clean hold-out"),
    which later cells use too: if the call changed it in place, ``forget()`` drops what holds it (the
    next cell loads it again) and the cell fails, with a :class:`PluginError` naming ``who`` and what
    changed, or with the call's own error when it failed anyway. A checksum of the images and labels
    before and after (none for data off the CPU)."""
    before = _digests(data) if data.x.device.type == "cpu" else None
    try:
        yield
    except PLUGIN_FAILURES:
        if before is not None and _digests(data) != before:
            forget()
        raise
    after = _digests(data) if before is not None else before
    if after != before:
        forget()
        assert before is not None and after is not None
        changed = " and ".join(p for p, b, a in zip(("images", "labels"), before, after) if b != a)
        raise PluginError(f"{who} changed {what} it was given in place ({method} must leave its input alone{advice}; "
                          f"its {changed} differ after {method})")
