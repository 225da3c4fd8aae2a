"""The ``inline`` executor: every cell one after the other in this process (the default)."""

from __future__ import annotations

from pathlib import Path

from benchmark.config import Resolved
from benchmark.executor import Executor, RunOptions
from benchmark.runner import Runner
from benchmark.summary import Summary


class Inline(Executor):
    """One cell after the other in the ``bench`` process, with a progress bar; Ctrl-C keeps every
    finished cell and a rerun resumes. Takes no params."""

    name = "inline"
    version = "1"

    def run(self, resolved: Resolved, results: str | Path, options: RunOptions) -> Summary:
        return Runner(resolved, results, progress=options.progress, verbose=options.verbose, log=options.log,
                      retry_failed=options.retry_failed).run()
