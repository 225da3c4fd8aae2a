"""A plugin's failure as the runner handles it: what counts as one, how it reads in a cell's record
and in the run's log, and the shared inputs a plugin must leave as it found them.

A failure fails its cell only (the run goes on); Ctrl-C and a user's error stop the run, so the
runner re-raises those before it catches :data:`PLUGIN_FAILURES`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from benchmark.data.dataset import ImageDataset, data_checksum
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


@contextlib.contextmanager
def left_alone(data: ImageDataset, who: str, what: str, method: str, forget: Callable[[], None], advice: str,
               before: str | None = None) -> Iterator[None]:
    """Run ``who``'s ``method`` on ``data`` (``what``: "the training set", "the clean hold-out"),
    which later cells use too: if the call changed it in place, ``forget()`` drops what holds it (the
    next cell loads it again) and the cell fails, with a :class:`PluginError` naming ``who``, or with
    the call's own error when it failed anyway. :func:`~benchmark.data.dataset.data_checksum` of the
    images and labels before (``before`` when the caller has it already) and after; none for data
    off the CPU."""
    if data.x.device.type != "cpu":
        yield
        return
    before = before or data_checksum(data)
    try:
        yield
    except PLUGIN_FAILURES:
        if data_checksum(data) != before:
            forget()
        raise
    if data_checksum(data) != before:
        forget()
        raise PluginError(f"{who} changed {what} it was given in place ({method} must leave its input alone{advice}; "
                          f"its images or labels differ after {method})")
