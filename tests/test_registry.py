from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from benchmark.errors import PluginNotFound
from benchmark.registry import BrokenPlugin, Registry, get_registry, make_plugin_manager


def test_builtins_registered_through_hooks():
    r = get_registry()
    assert {"clean", "em", "em-class", "random-noise"} <= set(r.names("attack"))
    assert "sl" in r.names("victim")
    assert {"none", "iss-gray", "iss-jpeg", "iss-bdr"} <= set(r.names("defense"))
    assert "accuracy" in r.names("metric")
    assert {"digits", "fashion-mnist", "cifar10", "cifar100", "svhn", "npz", "imagefolder"} <= set(r.names("dataset"))
    assert {"resnet18", "small-cnn"} <= set(r.names("model"))
    assert r.entry("attack", "em").source == "plugins.attacks"


def test_unknown_name_did_you_mean():
    with pytest.raises(PluginNotFound, match=r"unknown attack 'emm'; did you mean 'em'"):
        get_registry().get("attack", "emm")


def _write_module(tmp_path, name, body, monkeypatch):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)


THIRD_PARTY = """
    from benchmark import Attack, Poison, hookimpl

    class Shift(Attack):
        '''Adds one grey level (L-inf 1/255). Test plugin.'''
        name = "{name}"
        def generate(self, train, ctx):
            return Poison(x=(train.x.int() + 1).clamp(max=255).byte())

    @hookimpl
    def register_attacks():
        return [Shift]
"""


def test_duplicate_of_a_builtin_is_broken_and_the_builtin_kept(tmp_path, monkeypatch):
    _write_module(tmp_path, "dup_em_plugin", THIRD_PARTY.format(name="em"), monkeypatch)
    r = Registry(make_plugin_manager(["plugins.attacks", "dup_em_plugin"], entry_points=False))
    assert r.entry("attack", "em").source == "plugins.attacks" and r.get("attack", "em").__name__ == "EM"
    (dup,) = r.broken()
    assert (dup.kind, dup.name, dup.source) == ("attack", "em", "dup_em_plugin")
    assert dup.error == "duplicate of the built-in attack 'em'; rename it"


def test_two_third_parties_claiming_one_name_both_lose_it(tmp_path, monkeypatch):
    _write_module(tmp_path, "shift_a", THIRD_PARTY.format(name="shift"), monkeypatch)
    _write_module(tmp_path, "shift_b", THIRD_PARTY.format(name="shift"), monkeypatch)
    r = Registry(make_plugin_manager(["shift_a", "shift_b"], entry_points=False))
    assert r.names("attack") == [] and len(r.broken()) == 2
    with pytest.raises(BrokenPlugin, match=r"attack 'shift' from \? \(shift_a\) is broken: attack 'shift' is registered twice: by shift_a \(\?\) and by shift_b"):
        r.get("attack", "shift")


def test_env_var_loads_explicit_subset(tmp_path, monkeypatch):
    _write_module(tmp_path, "shift_plugin", THIRD_PARTY.format(name="shift"), monkeypatch)
    monkeypatch.setenv("UEBENCH_PLUGINS", "shift_plugin,plugins.metrics")
    r = Registry(make_plugin_manager())
    assert r.names("attack") == ["shift"]
    assert r.names("metric") == ["accuracy", "certified-learnability", "unlearnable-distance"]
    assert r.names("victim") == []


def test_env_var_bad_module_is_listed_not_raised(monkeypatch):
    monkeypatch.setenv("UEBENCH_PLUGINS", "no_such_plugin_module,plugins.metrics")
    r = Registry(make_plugin_manager())
    (bad,) = r.broken()
    assert bad.kind == "module" and bad.name == "no_such_plugin_module"
    assert bad.error.startswith(
        "cannot import no_such_plugin_module (from UEBENCH_PLUGINS): ModuleNotFoundError: No module named 'no_such_plugin_module'")
    assert "accuracy" in r.names("metric")
    assert bad.package == "?"  # not an installed distribution (and not uebench's)


def test_entry_point_third_party_package(tmp_path, monkeypatch):
    """A distribution with an entry point in the `uebench` group is picked up, with its package name."""
    _write_module(tmp_path, "uebench_shift", THIRD_PARTY.format(name="shift"), monkeypatch)
    dist = tmp_path / "uebench_shift-0.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: uebench-shift\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[uebench]\nshift = uebench_shift\n")
    r = Registry(make_plugin_manager())
    entry = r.entry("attack", "shift")
    assert entry.package == "uebench-shift" and entry.source == "uebench_shift"
    assert "em" in r.names("attack")


def test_missing_requirement_reported():
    from benchmark import Attack

    class NeedsKornia(Attack):
        """x"""

        name = "needs"
        requires = ("surely_not_installed_module",)

        def generate(self, train, ctx):  # pragma: no cover
            return None

    assert NeedsKornia.missing_requirements() == ["surely_not_installed_module"]


# -------------------------------------------------------------------- isolation, with real entry points


def make_dist(site, dist: str, version: str, module: str, source: str, ep_name: str | None = None) -> None:
    """A tiny installed distribution in ``site`` (a directory on ``sys.path``): the module and a
    dist-info with its ``uebench`` entry point, as ``pip install`` leaves them."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[uebench]\n{ep_name or module} = {module}\n")
    (info / "top_level.txt").write_text(f"{module}\n")


STAGED = """
    from benchmark import Defense, hookimpl

    class {cls}(Defense):
        "Declares stage {stage!r}, implements a data transform. Test plugin."
        name = "{name}"
        stage = "{stage}"
        def transform(self, train, ctx):
            return train

    @hookimpl
    def register_defenses():
        return [{cls}]
"""


BROKEN_DISTS = {
    # distribution: (module, source)
    "uebench-noimport": ("uebench_noimport", "import surely_not_installed_dependency\n"),
    "uebench-raises": ("uebench_raises", """
        from benchmark import hookimpl

        @hookimpl
        def register_attacks():
            raise RuntimeError("registry down")
        """),
    "uebench-nameless": ("uebench_nameless", """
        from benchmark import Attack, Poison, hookimpl

        class Nameless(Attack):
            "No name attribute."
            def generate(self, train, ctx):
                return Poison(x=train.x)

        @hookimpl
        def register_attacks():
            return [Nameless]
        """),
    "uebench-baddefault": ("uebench_baddefault", """
        from pydantic import Field
        from benchmark import Attack, Params, Poison, hookimpl

        class BadDefault(Attack):
            "Its smoke profile breaks its own bound."
            name = "bad-default"
            class Params(Params):
                eps: float = Field(8 / 255, ge=0, le=1)
            profiles = {"smoke": {"eps": 3.0}}
            def generate(self, train, ctx):
                return Poison(x=train.x)

        @hookimpl
        def register_attacks():
            return [BadDefault]
        """),
    "uebench-dupem": ("uebench_dupem", THIRD_PARTY.format(name="em")),
    "uebench-typo": ("uebench_typo", """
        from benchmark import hookimpl

        @hookimpl
        def register_attack():
            return []
        """),
    "uebench-halfhook": ("uebench_halfhook", THIRD_PARTY.format(name="half-shift") + """
    @hookimpl
    def register_defenses(extra):
        return []
"""),
    # a typo in its stage; a train-stage defense implementing a data transform
    "uebench-badstage": ("uebench_badstage", STAGED.format(cls="Dated", name="dated", stage="date")),
    "uebench-wrongmethod": ("uebench_wrongmethod", STAGED.format(cls="TrainButTransforms", name="train-transform", stage="train")),
    "uebench-shift": ("uebench_shift", THIRD_PARTY.format(name="shift")),
}


@pytest.fixture
def broken_site(tmp_path, monkeypatch):
    """A site directory with one healthy third-party package and nine broken ones, on ``sys.path``."""
    site = tmp_path / "site"
    site.mkdir()
    for dist, (module, source) in BROKEN_DISTS.items():
        make_dist(site, dist, "0.1", module, source)
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.syspath_prepend(str(site))
    return site


def test_broken_packages_are_listed_and_the_others_load(broken_site):
    r = Registry(make_plugin_manager())
    why = {e.package: e.error for e in r.broken()}
    assert why["uebench-noimport"].startswith(
        "cannot import uebench_noimport: ModuleNotFoundError: No module named 'surely_not_installed_dependency' (at uebench_noimport.py:1)")
    assert why["uebench-raises"] == "register_attacks() raised RuntimeError: registry down (at uebench_raises.py:6)"
    assert why["uebench-nameless"].startswith("class Nameless has no usable `name`")
    assert why["uebench-baddefault"] == (
        "its own default params fail validation at profile 'smoke': eps: Input should be less than or equal to 1 (got 3.0); eps is in [0, 1] pixel units: write 3/255 (= 0.0118) for 3 on the 0-255 scale")
    assert why["uebench-dupem"] == "duplicate of the built-in attack 'em'; rename it"
    assert why["uebench-typo"] == "defines hook 'register_attack', which uebench does not have; did you mean 'register_attacks'?"
    # a module pluggy rejects for one hook registers none of its hooks, and the reason names the argument
    assert why["uebench-halfhook"].startswith("not a valid plugin module: PluginValidationError: Plugin 'uebench_halfhook' for hook 'register_defenses'")
    assert "{'extra'}" in why["uebench-halfhook"] and "half-shift" not in r.names("attack")
    assert why["uebench-badstage"] == "has stage 'date': one of none, data, train, model"
    assert why["uebench-wrongmethod"] == "is a train-stage defense but overrides transform, the data stage's method"
    assert len(why) == 9 and all(e.package_version == "0.1" for e in r.broken())
    assert r.entry("attack", "shift").package == "uebench-shift"  # the healthy package loads
    assert {"em", "clean", "shift"} <= set(r.names("attack")) and "bad-default" not in r.names("attack")
    assert not {"dated", "train-transform"} & set(r.names("defense"))


def test_a_module_named_in_the_env_var_shows_its_installed_package(broken_site, monkeypatch):
    monkeypatch.setenv("UEBENCH_PLUGINS", "uebench_shift,plugins.metrics")
    r = Registry(make_plugin_manager())
    assert (r.entry("attack", "shift").package, r.entry("attack", "shift").package_version) == ("uebench-shift", "0.1")
    assert r.entry("metric", "accuracy").package == "uebench"


def test_a_matrix_naming_a_broken_plugin_gets_one_line_naming_it_and_its_package(broken_site):
    from benchmark.config import parse_matrix, resolve
    from benchmark.errors import ConfigError

    r = Registry(make_plugin_manager())
    base = {"dataset": "digits", "profile": "smoke", "victims": ["sl"]}
    assert [a.name for a in resolve(parse_matrix({**base, "attacks": ["em", "shift"]}), r).attacks] == ["em", "shift"]
    with pytest.raises(ConfigError) as e:
        resolve(parse_matrix({**base, "attacks": ["bad-default"]}), r)
    assert str(e.value) == (
        "attacks[0].name: attack 'bad-default' from uebench-baddefault 0.1 (uebench_baddefault) is broken: its own default "
        "params fail validation at profile 'smoke': eps: Input should be less than or equal to 1 (got 3.0); eps is in [0, 1] pixel units: write 3/255 (= 0.0118) for 3 on the 0-255 scale")
    with pytest.raises(ConfigError, match=r"unknown attack 'noimport'.*a broken plugin package may provide it: uebench_noimport from uebench-noimport 0.1: cannot import"):
        resolve(parse_matrix({**base, "attacks": ["noimport"]}), r)


DECLARATIONS = """
    from benchmark import Attack, Metric, Poison, Victim, hookimpl

    def attack(name, **attrs):
        def generate(self, train, ctx):
            return Poison(x=train.x)
        return type("A", (Attack,), {"__doc__": "A test attack.", "name": name, "generate": generate, **attrs})

    class Percent(Metric):
        "Says 'percentage', which no report knows."
        name = "percent-unit"
        unit = "percentage"
        def compute(self, cell, ctx):
            return {"p": 1.0}

    class Selfish(Victim):
        "A paradigm the runner does not know."
        name = "selfish"
        paradigm = "selfsupervised"

    @hookimpl
    def register_attacks():
        return [attack("UPPER"), attack("a/b"), attack("../../evil"), attack("under_score"), attack("x" * 65), attack("newline" + chr(10)),
                attack("no-version", version=""), attack("int-version", version=2), attack("fine")]

    @hookimpl
    def register_metrics():
        return [Percent]

    @hookimpl
    def register_victims():
        return [Selfish]
"""


def test_names_versions_paradigms_and_units_the_runner_relies_on_are_checked_when_registered(tmp_path, monkeypatch):
    """A name becomes a file name and a table header: `a/b` or `../../evil` would write outside the
    report's folder; a unit or paradigm the runner does not know would be shown or run wrongly."""
    _write_module(tmp_path, "uebench_declarations", DECLARATIONS, monkeypatch)
    pm = make_plugin_manager(["uebench_declarations"], entry_points=False)
    why = {e.name: e.error for e in Registry(pm).broken()}
    assert why["UPPER"] == "has the `name` 'UPPER': use lowercase letters, digits and single hyphens, starting with a letter"
    assert {"a/b", "../../evil", "under_score", "newline\n"} <= set(why)
    assert why["x" * 65] == "has a `name` of 65 characters ('xxxxxxxxxxxxxxxxxxxxxxxx'...): at most 64"
    assert why["no-version"] == "has `version = ''`: a non-empty string, such as \"1\""
    assert why["int-version"] == "has `version = 2`: a non-empty string, such as \"1\""
    assert why["percent-unit"] == "has `unit = 'percentage'`: one of fraction, percent, ratio, number"
    assert why["selfish"] == "has `paradigm = 'selfsupervised'`: 'supervised' or 'contrastive'"
    assert "fine" not in why and Registry(pm).names("attack") == ["fine"]


def test_a_third_party_plugin_named_like_a_built_in_is_named_in_a_warning_when_the_name_is_used(broken_site, capsys):
    r = Registry(make_plugin_manager())
    assert r.get("attack", "em").__module__ == "plugins.attacks.em"
    r.get("attack", "em")  # once per registry
    assert capsys.readouterr().err == (
        "warning: attack 'em' is uebench's own; uebench-dupem 0.1 (uebench_dupem) also registers that name and is not used: "
        "rename it there\n")
    with pytest.raises(PluginNotFound) as e:  # no broken package is named after it: a count, not a guess
        r.get("attack", "misspelled")
    assert str(e.value).endswith("; 4 broken plugin packages might provide it (see `bench plugins`)")


# ------------------------------------------------------- hooks that silently registered nothing, wrong returns


def _dist_with_entry_points(site, dist: str, version: str, modules: dict[str, str], eps: dict[str, str]) -> None:
    """A distribution in ``site`` with several modules and ``uebench`` entry points (name -> module)."""
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[uebench]\n" + "".join(f"{name} = {module}\n" for name, module in eps.items()))
    (info / "top_level.txt").write_text("".join(f"{m}\n" for m in modules))


@pytest.fixture
def quiet_site(tmp_path, monkeypatch):
    """A site directory with packages whose hooks register nothing, or something that is not a class."""
    site = tmp_path / "site"
    site.mkdir()
    _dist_with_entry_points(site, "uebench-undecorated", "0.2", {"uebench_undecorated": THIRD_PARTY.format(name="plain-shift").replace(
        "    @hookimpl\n", "")}, {"undecorated": "uebench_undecorated"})
    _dist_with_entry_points(site, "uebench-strings", "0.3", {"uebench_strings": """
        from benchmark import Attack, Poison, hookimpl

        class Shift(Attack):
            "A test attack."
            name = "inst-shift"
            def generate(self, train, ctx):
                return Poison(x=train.x)

        @hookimpl
        def register_metrics():
            return ["accuracy2"]

        @hookimpl
        def register_attacks():
            return [Shift()]
        """}, {"strings": "uebench_strings"})
    for module in ("uebench_undecorated", "uebench_strings"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.syspath_prepend(str(site))
    return site


def test_an_undecorated_hook_function_is_a_broken_package_not_silence(quiet_site):
    from benchmark.config import parse_matrix, resolve
    from benchmark.errors import ConfigError

    r = Registry(make_plugin_manager())
    (bad,) = [e for e in r.broken() if e.package == "uebench-undecorated"]
    assert (bad.kind, bad.name, bad.package_version) == ("module", "undecorated.register_attacks", "0.2")
    assert bad.error.startswith("register_attacks is not decorated with @hookimpl")
    assert "plain-shift" not in r.names("attack")
    base = {"dataset": "digits", "profile": "smoke", "victims": ["sl"]}
    with pytest.raises(ConfigError) as e:  # the matrix naming its plugin gets the reason, not only "unknown attack"
        resolve(parse_matrix({**base, "attacks": ["clean", "plain-shift"]}), r)
    msg = str(e.value)
    assert "unknown attack 'plain-shift'" in msg and "uebench-undecorated 0.2: register_attacks is not decorated with @hookimpl" in msg
    assert "\n" not in msg


def test_a_hook_returning_something_else_than_classes_is_named_for_what_it_returned(quiet_site):
    r = Registry(make_plugin_manager())
    why = {e.name: e.error for e in r.broken() if e.package == "uebench-strings"}
    assert set(why) == {"<str>", "inst-shift"}  # an instance keeps its name: a matrix naming it gets the reason
    assert why["<str>"] == "register_metrics() returned 'accuracy2', not a class (return the plugin classes themselves)"
    assert why["inst-shift"] == "register_attacks() returned Shift Shift(Params()), not a class (return the plugin classes themselves)"
    assert "no usable `name`" not in " ".join(why.values())
    with pytest.raises(BrokenPlugin, match=r"attack 'inst-shift' from uebench-strings 0.3 \(uebench_strings\) is broken: register_attacks\(\) returned Shift"):
        r.get("attack", "inst-shift")


DEPENDENT = """
    import surely_not_installed_dependency_{n}
    from benchmark import hookimpl
"""


def test_an_unknown_name_quotes_the_import_errors_of_a_few_broken_packages_counted_by_distribution(tmp_path, monkeypatch):
    """The entry points are not named after the plugin (`md`, `md-extra` for `missing-dep`): the
    error quotes why the package did not load, and counts its two broken modules as one package."""
    from benchmark.config import parse_matrix, resolve
    from benchmark.errors import ConfigError

    site = tmp_path / "site"
    site.mkdir()
    _dist_with_entry_points(site, "uebench-deps", "0.1", {"uebench_md": DEPENDENT.format(n=1), "uebench_md_extra": DEPENDENT.format(n=2)},
                            {"md": "uebench_md", "md-extra": "uebench_md_extra"})
    for module in ("uebench_md", "uebench_md_extra"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.syspath_prepend(str(site))
    r = Registry(make_plugin_manager())
    assert len([e for e in r.broken() if e.package == "uebench-deps"]) == 2
    with pytest.raises(ConfigError) as e:
        resolve(parse_matrix({"dataset": "digits", "profile": "smoke", "attacks": ["clean"], "victims": ["sl"],
                                        "defenses": ["none", "missing-dep"]}), r)
    msg = str(e.value)
    assert "unknown defense 'missing-dep'" in msg and "\n" not in msg
    assert ("; a broken plugin package might provide it: uebench-deps 0.1: cannot import uebench_md: ModuleNotFoundError: "
            "No module named 'surely_not_installed_dependency_1'") in msg
    assert "(and 1 more broken module) (see `bench plugins`)" in msg and "2 broken plugin packages" not in msg

    # a second broken distribution: both quoted; a third: only their count
    _dist_with_entry_points(site, "uebench-other", "0.5", {"uebench_other": DEPENDENT.format(n=3)}, {"other": "uebench_other"})
    importlib.invalidate_caches()
    msg = str(pytest.raises(PluginNotFound, Registry(make_plugin_manager()).get, "defense", "missing-dep").value)
    assert "; 2 broken plugin packages might provide it: uebench-" in msg and "\n" not in msg
    assert "uebench-deps 0.1: cannot import uebench_md: ModuleNotFoundError: " in msg and "(and 1 more broken module)" in msg
    assert "uebench-other 0.5: cannot import uebench_other: ModuleNotFoundError: " in msg
    _dist_with_entry_points(site, "uebench-third", "0.5", {"uebench_third": DEPENDENT.format(n=4)}, {"third": "uebench_third"})
    importlib.invalidate_caches()
    msg = str(pytest.raises(PluginNotFound, Registry(make_plugin_manager()).get, "defense", "missing-dep").value)
    assert msg.endswith("; 3 broken plugin packages might provide it (see `bench plugins`)")
