"""The README's plug-in example, run as written: registration in Python, and the
installed package found by `hwprof search` through the ``hwprof.strategies`` entry point."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwprof.latency.table import write_table
from tests.synthetic import synthetic_table

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "plugin_strategy"


def _readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Plug in your own search strategy"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A synthetic ``tiny`` table whose latency range has 1.0 ms (the README's budget) in
    its middle."""
    from hwprof.latency.model import LatencyModel
    from hwprof.latency.spaces import get_space
    from hwprof.search.latency_loss import LatencyTable2D
    specs = get_space("tiny").table_specs()
    medians = np.array([0.02 + 0.013 * (i % 9) for i in range(len(specs))])
    lo, hi = LatencyTable2D.from_model(
        get_space("tiny"), LatencyModel(synthetic_table(specs=specs, medians=list(medians)))
    ).range_ms()
    path = tmp_path_factory.mktemp("t") / "cpu-tiny.parquet"
    write_table(path, synthetic_table(specs=specs, medians=list(medians * 2 / (lo + hi))))
    return path


@pytest.fixture
def clean_plugin(clean_registry):
    """The registry as it was, and the example's module forgotten."""
    yield
    sys.modules.pop("hwprof_greedy_params", None)


def test_readme_python_example_runs(table, tmp_path, monkeypatch, capsys, clean_plugin):
    code = _readme_block()
    assert "register_strategy(\"greedy-params\", GreedyParams)" in code
    code = code.replace('"tables/cpu-tiny.parquet"', repr(str(table)))
    code = code.replace('"runs/greedy"', repr(str(tmp_path / "greedy")))
    monkeypatch.syspath_prepend(str(EXAMPLE))
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    rep = ns["report"]
    assert rep["algo"] == "greedy-params" and rep["result"] == "estimated_within_budget"
    assert rep["predicted_ms"] <= 1.0 and rep["greedy_steps"] >= 1
    assert rep["choices"] == rep["strategy_choices"]   # a one-hot preference derives its pick
    assert (tmp_path / "greedy" / "model.nnp").exists()
    assert str(rep["choices"]) in capsys.readouterr().out


def test_installed_example_is_found_by_the_cli(table, tmp_path):
    """pip installs the example (its pyproject.toml, a real dist-info with the entry point)
    into a folder; a fresh `hwprof search` process with it on the path runs the plug-in."""
    site, src = tmp_path / "site", tmp_path / "src"
    shutil.copytree(EXAMPLE, src)   # the build leaves build/ and *.egg-info beside the sources
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(site),
                          str(src)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    eps = list(site.glob("hwprof_greedy_params-*.dist-info/entry_points.txt"))
    assert eps and "[hwprof.strategies]" in eps[0].read_text()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    rng = np.random.RandomState(0)
    npz = tmp_path / "d.npz"
    np.savez(npz, x_train=rng.rand(60, 3, 16, 16).astype(np.float32), y_train=rng.randint(0, 10, 60))

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "hwprof", "search", *args],
                              capture_output=True, text=True, timeout=300, env=env,
                              cwd=tmp_path)
    helptext = cli("--help").stdout
    assert re.search(r"^  greedy-params +plug-in +entry point greedy-params = "
                     r"hwprof_greedy_params:GreedyParams", helptext, re.M)
    out = tmp_path / "run"
    p = cli("--table", str(table), "--space", "tiny", "--latency-budget", "mid", "--algo",
            "greedy-params", "--data", str(npz), "--retrain-epochs", "0", "--no-device",
            "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert "[greedy-params]" in p.stdout
    rep = json.loads((out / "report.json").read_text())
    assert rep["algo"] == "greedy-params" and rep["predicted_ms"] <= rep["budget_ms"]
    p = cli("--table", str(table), "--space", "tiny", "--latency-budget", "mid", "--algo",
            "greedy-params", "--strategy-option", "x=1", "--no-device", "--out", str(out))
    assert p.returncode == 2 and "has no option x" in p.stderr
