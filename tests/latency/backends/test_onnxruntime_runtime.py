"""The ONNX Runtime runtime on the CPU: real ORT sessions, the same plans and tables as nnabla.

Runs under an interpreter that has onnxruntime and onnx (see torch_python.py);
skipped when none has them.
"""

import json
import subprocess

import pytest

from hwprof.latency.backends.bundle import local_agent_path
from hwprof.latency.specs import parse_spec
from hwprof.latency.table import read_table
from tests.latency.backends.test_torch_runtime import EVERY_KIND, FAST
from tests.latency.backends.torch_python import agent_env, onnxruntime_python

FOUND = onnxruntime_python()

# Builds every plan with the ORT runtime from the agent's zipapp; reports the output's shape,
# whether it is finite and non-zero, and whether the timed callable runs.
SHAPES = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from hwprof_agent.runtime_onnxruntime import Runtime
rt = Runtime("cpu", seed=0)
out = []
for plan in json.loads(sys.stdin.read()):
    y = rt.output(plan)
    rt.build(plan)()
    x = rt._rand(plan["input"])
    out.append({"shape": list(y.shape), "finite": bool(np.isfinite(y).all()),
                "nonzero": float(np.abs(y).sum()) > 0, "x_std": float(x.std())})
print(json.dumps(out))
"""

# The same small chain in ORT and in plain NumPy: an h-swish, an SE gate, a BN, a pooling.
NUMERIC = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from hwprof_agent.runtime_onnxruntime import Runtime
plans = json.loads(sys.stdin.read())
out = []
for plan in plans:
    rt = Runtime("cpu", seed=3)
    sess, x, _ = rt._session(plan)
    out.append({"x": x.ravel().tolist(), "y": sess.run(None, {"x": x})[0].ravel().tolist()})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def ort_py():
    if FOUND is None:
        pytest.skip("no Python interpreter with onnxruntime and onnx (set HWPROF_ORT_PYTHON or "
                    "make .venv-torch)")
    return FOUND[0]


def _run(ort_py, script, plans, **env):
    p = subprocess.run([ort_py, "-c", script, str(local_agent_path())], input=json.dumps(plans),
                       capture_output=True, text=True, timeout=300, env=agent_env(**env))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ort_outputs(ort_py):
    return _run(ort_py, SHAPES, [parse_spec(raw).plan() for raw in EVERY_KIND])


@pytest.mark.parametrize("i", range(len(EVERY_KIND)), ids=[r["kind"] for r in EVERY_KIND])
def test_ort_builds_every_kind_with_the_specs_output_shape(ort_outputs, i):
    out = ort_outputs[i]
    assert out["shape"] == parse_spec(EVERY_KIND[i]).output_shape
    assert out["finite"] and out["nonzero"]
    assert out["x_std"] > 0.5  # inputs are random, not zeros


def test_ort_elementwise_ops_compute_what_the_other_runtimes_do(ort_py):
    """hswish is x * relu6(x + 3) / 6 and relu6 clips at 0 and 6, as nnabla's and torch's."""
    import numpy as np
    plans = [parse_spec({"kind": k, "input": [1, 4, 3, 3]}).plan() for k in ("hswish", "relu6")]
    hs, r6 = _run(ort_py, NUMERIC, plans)
    x = np.asarray(hs["x"])
    np.testing.assert_allclose(hs["y"], x * np.clip(x + 3, 0, 6) / 6, rtol=1e-5, atol=1e-6)
    x = np.asarray(r6["x"])
    np.testing.assert_allclose(r6["y"], np.clip(x, 0, 6), rtol=1e-6)


def test_check_device_cpu_with_onnxruntime_reports_the_runtime(ort_py, hwprof_cli):
    p = subprocess.run([*hwprof_cli, "check-device", "cpu", "--runtime", "onnxruntime",
                        "--agent-python", ort_py, "--json"],
                       capture_output=True, text=True, timeout=300, env=agent_env())
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["ok"] and rep["problems"] == []
    assert rep["runtime"] == {"name": "onnxruntime", "version": FOUND[1]}
    assert rep["environment"]["ort_threads"] == 1  # OMP_NUM_THREADS reaches the session


def test_check_device_cuda_with_onnxruntime_says_it_is_cpu_only(ort_py, hwprof_cli):
    p = subprocess.run([*hwprof_cli, "check-device", "cuda", "--runtime", "onnxruntime",
                        "--agent-python", ort_py, "--json"],
                       capture_output=True, text=True, timeout=300, env=agent_env())
    assert p.returncode == 2, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert not rep["ok"] and "cpu only" in " ".join(rep["problems"])


def test_onnxruntime_table_of_the_tiny_space(ort_py, hwprof_cli, tmp_path):
    out, ref = tmp_path / "ort.parquet", tmp_path / "nnabla.parquet"
    for path, extra in ((out, ["--runtime", "onnxruntime", "--agent-python", ort_py]), (ref, [])):
        p = subprocess.run([*hwprof_cli, "build-table", "--device", "cpu", "--space", "tiny",
                            "--out", str(path), "--quiet", *FAST, *extra],
                           capture_output=True, text=True, timeout=600, env=agent_env())
        assert p.returncode == 0, p.stderr
    ot, nt = read_table(out), read_table(ref)
    assert sorted(ot.df["signature"]) == sorted(nt.df["signature"])
    assert (ot.df["status"] == "ok").all() and (ot.df["median_ms"] > 0).all()
    assert set(ot.df["runtime"]) == {"onnxruntime"}
    assert set(ot.df["runtime_version"]) == {FOUND[1]}
    assert set(ot.df["env_key"]).isdisjoint(set(nt.df["env_key"]))
    env = next(iter(ot.meta["environments"].values()))
    assert env["runtime"] == "onnxruntime" and env["ort_threads"] == 1


# Each session's intra-op spinning setting and what the environment records, for the
# OMP_NUM_THREADS the test passes.
SPINNING = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from hwprof_agent import runtime_onnxruntime as m
rt = m.Runtime("cpu", seed=0)
sess, _, _ = rt._session(json.loads(sys.stdin.read())[0])
opts = sess.get_session_options()
try:
    entry = opts.get_session_config_entry("session.intra_op.allow_spinning")
except RuntimeError:
    entry = None
print(json.dumps({"entry": entry, "threads": opts.intra_op_num_threads,
                  "env": m.probe("cpu")[3]["ort_spinning"]}))
"""


@pytest.mark.parametrize("threads, entry, spinning", [("1", None, True), ("2", "0", False),
                                                       ("0", "0", False)])
def test_ort_sessions_spin_only_with_a_one_thread_pool(ort_py, threads, entry, spinning):
    # every op keeps its own session: spinning pools of many sessions starve the machine
    out = _run(ort_py, SPINNING, [parse_spec(EVERY_KIND[0]).plan()], OMP_NUM_THREADS=threads)
    assert out["entry"] == entry and out["env"] is spinning
    assert out["threads"] == int(threads)
