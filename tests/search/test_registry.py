"""The strategy registry: built-in names, Python registration, unknown names, entry points."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hwprof.errors import UserError
from hwprof.search import registry
from hwprof.search.strategy import SearchResult, Strategy

BUILTINS = {"darts", "proxyless", "fbnet", "random", "evolution", "spos"}


pytestmark = pytest.mark.usefixtures("clean_registry")


class Fastest(Strategy):
    name, kind, description = "fastest-test", "one-shot", "each layer's fastest candidate"

    def search(self, problem):
        return SearchResult([np.eye(len(t))[int(np.argmin(t))] for t in problem.lut.ms])


def test_builtin_names_listed_without_importing_solvers():
    code = ("import sys; from hwprof.search.registry import strategy_names, describe_strategies;"
            "names = strategy_names(); describe_strategies();"
            "print(','.join(names)); print('nnabla.solvers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, solvers = out.stdout.split()
    assert BUILTINS <= set(names.split(","))
    assert solvers == "False"


def test_describe_gives_kind_and_line_for_builtins():
    info = {n: (k, d) for n, k, d in registry.describe_strategies()}
    assert info["darts"][0] == "one-shot" and info["random"][0] == "multi-trial"
    assert all(info[n][1] for n in BUILTINS)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UserError) as e:
        registry.get_strategy("nope")
    msg = str(e.value)
    assert "nope" in msg and "\n" not in msg
    for n in BUILTINS:
        assert n in msg


def test_register_class_and_factory():
    registry.register_strategy("fastest-test", Fastest)
    s = registry.get_strategy("fastest-test")
    assert isinstance(s, Fastest) and "fastest-test" in registry.strategy_names()
    assert registry.get_strategy("fastest-test") is not s   # a new instance each time
    registry.register_strategy("fastest-f", lambda: Fastest())
    assert isinstance(registry.get_strategy("fastest-f"), Fastest)


def test_register_refuses_duplicates_unless_replace():
    with pytest.raises(ValueError, match="already registered"):
        registry.register_strategy("darts", Fastest)
    registry.register_strategy("darts", Fastest, replace=True)
    assert isinstance(registry.get_strategy("darts"), Fastest)


def test_register_rejects_bad_names_and_targets():
    with pytest.raises(ValueError):
        registry.register_strategy("has space", Fastest)
    with pytest.raises(TypeError):
        registry.register_strategy("x", 42)


def test_not_a_strategy_is_a_one_line_error():
    registry.register_strategy("broken", lambda: object())
    with pytest.raises(UserError, match="no search"):
        registry.get_strategy("broken")


def test_missing_builtin_module_is_a_clear_error():
    registry.register_strategy("ghost", "hwprof.search.no_such_module:Ghost")
    with pytest.raises(UserError, match="ghost.*cannot be loaded"):
        registry.get_strategy("ghost")
    registry._REGISTRY["ghost2"] = registry._entry("hwprof.search.no_such_module:G", "one-shot",
                                                   "x", "built-in")
    with pytest.raises(UserError, match="not available in this installation"):
        registry.get_strategy("ghost2")


def _dist(root, name, entry_points, module_src):
    """A real installed distribution (dist-info with entry_points.txt) under ``root``."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[hwprof.strategies]\n" + entry_points + "\n")
    (root / f"{name}.py").write_text(textwrap.dedent(module_src))


def test_entry_point_plugin_is_found_and_loaded_lazily(tmp_path, monkeypatch):
    _dist(tmp_path, "hwprof_test_plug", "plug-fastest = hwprof_test_plug:Fastest", """
        import numpy as np
        from hwprof.search.strategy import SearchResult, Strategy

        class Fastest(Strategy):
            name, kind, description = "plug-fastest", "one-shot", "from a plug-in"

            def search(self, problem):
                return SearchResult([np.ones(len(t)) for t in problem.lut.ms])
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.rescan_plugins()
    assert "plug-fastest" in registry.strategy_names()
    assert "hwprof_test_plug" not in sys.modules   # listed, not imported
    s = registry.get_strategy("plug-fastest")
    assert type(s).__name__ == "Fastest" and s.kind == "one-shot"
    monkeypatch.delitem(sys.modules, "hwprof_test_plug")


def test_broken_plugin_is_one_line_naming_it(tmp_path, monkeypatch):
    _dist(tmp_path, "hwprof_test_broken", "plug-broken = hwprof_test_broken:Nope",
          "raise ImportError('needs a library that is not installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.rescan_plugins()
    assert "plug-broken" in registry.strategy_names()   # listing does not load it
    with pytest.raises(UserError) as e:
        registry.get_strategy("plug-broken")
    msg = str(e.value)
    assert "plug-broken" in msg and "hwprof_test_broken:Nope" in msg and "\n" not in msg
