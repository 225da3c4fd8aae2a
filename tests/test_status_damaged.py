"""``bench status`` on a cell whose record was damaged and moved aside (``*.corrupt``) by a command
that read the directory: it says so, naming the file, not "interrupted ... no result"."""

from __future__ import annotations

import os

from benchmark.cli import main
from benchmark.config import parse_matrix, resolve
from benchmark.registry import get_registry
from benchmark.runner import Runner
from benchmark.status import Survey
from tests.test_runner import BASE


def test_a_record_moved_aside_is_named_not_called_interrupted(tmp_path, capsys):
    import yaml

    m = {**BASE, "attacks": ["clean"], "defenses": ["none"], "seeds": [0, 1]}
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(m))
    r = resolve(parse_matrix(m), get_registry())
    run = Runner(r, tmp_path / "res", log=lambda s: None, progress=False)
    run.run()
    damaged = min((tmp_path / "res" / "cells").glob("*.json"))
    damaged.write_text(damaged.read_text()[:100])  # truncated
    (tmp_path / "res" / "cells" / "bogus.json").write_text("{}")
    assert main(["leaderboard", str(tmp_path / "res")]) == 0  # reading moves both aside
    assert (tmp_path / "res" / "cells" / f"{damaged.name}.corrupt").exists()
    capsys.readouterr()
    assert main(["status", str(tmp_path / "res"), str(tmp_path / "m.yaml")]) == 0
    out = capsys.readouterr().out
    assert f"its record was damaged and moved aside as cells/{damaged.name}.corrupt; the next run recomputes it" in out
    assert "interrupted" not in out
    [line] = Survey(tmp_path / "res").of_results()[0].pending  # without the matrix: from the cell's lock
    assert f"moved aside as cells/{damaged.name}.corrupt" in line.detail


def test_a_run_that_took_the_cell_again_and_ended_without_a_record_is_interrupted(tmp_path):
    m = {**BASE, "attacks": ["clean"], "defenses": ["none"], "seeds": [0]}
    r = resolve(parse_matrix(m), get_registry())
    run = Runner(r, tmp_path / "res", log=lambda s: None, progress=False)
    run.run()
    [rec] = (tmp_path / "res" / "cells").glob("*.json")
    key = rec.stem
    rec.rename(rec.with_name(rec.name + ".corrupt"))
    lock = tmp_path / "res" / "locks" / f"cell-{key}.lock"
    t = os.stat(rec.with_name(rec.name + ".corrupt")).st_mtime
    os.utime(lock, (t + 60, t + 60))  # taken after the damaged record was written
    [line] = Survey(tmp_path / "res").of_matrix(r).pending
    assert line.detail.startswith("interrupted: started by ") and f"(an earlier record, damaged, was moved aside as cells/{key}.json.corrupt)" in line.detail
