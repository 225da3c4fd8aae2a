"""``bench plugins [KIND] NAME``: one plugin's kind, class, paper, version, and every param with its
type, default and profile values; the params tables of docs/ (``<!-- generated: params -->``); the
quickstart's wall-time block (``<!-- generated: wall -->``)."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import Field

from benchmark.cli import MAX_ERROR_CHARS, main
from benchmark.describe_plugin import _comments, params_of, show, type_text
from benchmark.docs import regenerate
from benchmark.params import Params
from benchmark.store import ResultStore


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def row(out: str, param: str) -> list[str]:
    """The whitespace-split cells of ``param``'s row in ``bench plugins NAME``'s table."""
    line = next(ln for ln in out.splitlines() if ln.split()[:1] == [param])
    return line.split()


def test_a_built_in_victim_shows_its_params_defaults_and_profile_values(capsys):
    code, out, err = run(capsys, "plugins", "sl")
    assert code == 0, err
    head = out.splitlines()[0]
    assert head.startswith("victim sl: plugins.victims.sl.SL, version 1")
    assert "Huang et al., ICLR 2021" in out  # the docstring's summary names the source
    # params examples/smoke.yaml uses, which docs/ used to leave out
    assert row(out, "crop_padding")[:4] == ["crop_padding", "int", "≥", "0"] and row(out, "crop_padding")[4] == "4"
    assert row(out, "nesterov") == ["nesterov", "bool", "false", "true", "Nesterov", "momentum"]  # default false, quick sets true
    assert row(out, "epochs")[4:7] == ["200", "20", "2"]  # paper, quick, smoke
    assert row(out, "arch")[2:5] == ["resnet18", "small-cnn", "small-cnn"]
    assert "epochs at which a multistep schedule multiplies the lr by gamma" in out  # the field's comment
    assert "schedule       cosine | multistep | constant" in out


def test_kind_and_name_json_and_fractions(capsys):
    code, out, _ = run(capsys, "plugins", "attacks", "em", "--json")
    assert code == 0
    info = json.loads(out)
    assert (info["kind"], info["name"], info["class"]) == ("attack", "em", "plugins.attacks.em.EM")
    params = {p["name"]: p for p in info["params"]}
    assert params["steps"]["default"] == 20 and params["steps"]["profiles"]["quick"] == 10
    assert params["steps"]["description"] == "PGD steps per noise update"
    code, out, _ = run(capsys, "plugins", "em")
    assert row(out, "eps")[:7] == ["eps", "float", "≥", "0,", "≤", "1", "8/255"]
    assert row(out, "alpha")[:7] == ["alpha", "float", ">", "0,", "≤", "1", "0.8/255"]


def test_an_executor_without_profiles_shows_its_field_descriptions(capsys):
    code, out, _ = run(capsys, "plugins", "local")
    assert code == 0
    assert "no profile changes them" in out and "quick" not in out.split("params", 1)[1].splitlines()[1]
    assert "worker processes (default: GPUs on CUDA, else CPUs / threads)" in out


def test_an_unknown_name_is_one_error_line_with_did_you_mean(capsys):
    code, out, err = run(capsys, "plugins", "emm")
    assert code == 2 and out == ""
    assert err.startswith("error: unknown plugin 'emm'; did you mean 'em'") and err.count("\n") == 1
    assert len(err) <= len("error: ") + MAX_ERROR_CHARS + 1
    code, _, err = run(capsys, "plugins", "victim", "em")
    assert code == 2 and err.count("\n") == 1
    assert "unknown victim 'em'" in err and "`bench plugins attack em`" in err
    code, _, err = run(capsys, "plugins", "atack", "em")
    assert code == 2 and "unknown plugin kind 'atack'" in err


def test_the_plain_listing_is_unchanged(capsys):
    code, out, _ = run(capsys, "plugins")
    assert code == 0 and out.split()[:6] == ["kind", "name", "version", "package", "usable", "note"]


class Demo:
    """A stand-in plugin: comments, descriptions, an inherited field, profiles."""

    class Params(Params):
        # the radius
        eps: float = Field(8 / 255, ge=0, le=1)
        steps: int = Field(10, ge=1)  # PGD steps
        mode: Literal["a", "b"] = "a"
        clip: float | None = Field(None, gt=0, description="from the Field")

    profiles = {"quick": {"steps": 3}, "smoke": {"steps": 1, "eps": "4/255"}}


class DemoChild(Demo):
    class Params(Demo.Params):
        steps: int = Field(5, ge=1)


def test_descriptions_come_from_fields_then_comments_and_are_inherited():
    assert _comments(Demo.Params) == {"eps": "the radius", "steps": "PGD steps"}
    got = {p.name: p for p in params_of(DemoChild)}
    assert got["steps"].default == 5 and got["steps"].description == "PGD steps"  # the override keeps its base's comment
    assert got["clip"].description == "from the Field" and got["clip"].type == "float > 0 | null"  # the bound is the value's, not null's
    assert got["eps"].type == "float ≥ 0, ≤ 1" and got["mode"].type == "a | b"
    got = {p.name: p for p in params_of(Demo)}
    assert got["steps"].profiles == {"quick": 3, "smoke": 1}
    assert show(got["eps"].profiles["smoke"]) == "4/255"  # validated, shown as the source writes it
    assert type_text(int) == "int" and show(None) == "null" and show((60, 75)) == "[60, 75]" and show(0.1) == "0.1"


def test_params_block_is_generated_for_a_kind(tmp_path):
    out = regenerate("<!-- generated: params kind=victim -->\n<!-- end generated -->\n", tmp_path, "docs/victims.md")
    assert "**`sl`** (`plugins.victims.sl.SL`, version 1)" in out
    assert "| `crop_padding` | int ≥ 0 | `4` |  |  | zero padding in pixels of the random crop; 0: no crop |" in out
    assert "| `nesterov` | bool | `false` | `true` |  | Nesterov momentum |" in out
    assert "| `grad_clip` | float > 0 \\| null | `null` |" in out  # a union's bar escaped in the table
    assert regenerate(out, tmp_path, "docs/victims.md") == out


def test_wall_block_spans_first_start_to_last_finish(tmp_path):
    store = ResultStore(tmp_path / "results" / "qs")
    prov = {"host": "h", "device_name": "CPU X", "threads": 1}
    for i, (started, wall, worker) in enumerate([("2026-01-01T10:00:00+0000", 100.0, 0), ("2026-01-01T10:00:05+0000", 120.0, 1),
                                                 ("2026-01-01T10:01:40+0000", 200.0, 0)]):
        store.put(f"k{i}", {"status": "ok", "dataset": "d", "profile": "quick", "attack": "em" if i == 2 else "clean", "victim": "sl", "defense": "iss-gray" if i == 1 else "none", "seed": 0,
                            "metrics": {"accuracy": 0.5}, "started": started, "wall_s": wall, "provenance": prov,
                            "executor": {"name": "local", "worker": worker}, "timing": {"victim_s": wall - 10},
                            "poison_meta": {"wall_s": 90.0 if i == 2 else 0.2}})
    other = ResultStore(tmp_path / "results" / "other")  # on the same machine during the run
    other.put("o1", {"status": "ok", "dataset": "d", "profile": "quick", "attack": "clean", "victim": "sl", "defense": "none", "seed": 0, "metrics": {"accuracy": 0.5},
                     "started": "2026-01-01T09:59:00+0000", "wall_s": 60.0 + 100.0, "provenance": prov})
    out = regenerate("<!-- generated: wall results=results/qs -->\n<!-- end generated -->\n", tmp_path, "README.md")
    assert "3 cells in **5.0 min** from the first cell's start to the last one's finish (2026-01-01 10:00:00 → 10:05:00 UTC)" in out
    assert "local executor, 2 workers × 1 torch thread" in out and "the em poison 90 s" in out
    assert "`results/other`: 1" in out and "during 33% of it" in out


def test_a_plugin_module_that_failed_to_load_is_one_line(capsys, tmp_path, monkeypatch):
    """`bench plugins` lists a module that failed to import by its name; `bench plugins NAME` says
    why in one line (was a ValueError traceback: the module is no plugin kind)."""
    from tests.test_bad_inputs import plugin_module

    plugin_module(tmp_path, monkeypatch, "syntaxerr", "def (:\n")
    code, out, err = run(capsys, "plugins", "syntaxerr")
    assert code == 2 and not out and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("error: 'syntaxerr' is a plugin module that failed to load: cannot import syntaxerr") and "SyntaxError" in err, err
