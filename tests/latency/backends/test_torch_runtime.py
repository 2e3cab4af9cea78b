"""The torch runtime on the CPU: real PyTorch ops, the same plans and tables as nnabla.

Runs under an interpreter that has torch (see torch_python.py); skipped when
none has it.
"""

import json
import subprocess
import sys

import pytest

from hwprof.latency.backends.bundle import local_agent_path
from hwprof.latency.specs import parse_spec
from hwprof.latency.table import read_table
from tests.latency.backends.torch_python import agent_env, torch_python

FOUND = torch_python()
FAST = ["--time-cap", "0.2", "--min-samples", "5", "--min-span", "0"]

EVERY_KIND = [
    {"kind": "conv2d", "input": [1, 8, 12, 12], "out_channels": 6, "kernel": [3, 1], "stride": 2,
     "bias": True, "groups": 2},
    {"kind": "conv2d", "input": [2, 4, 9, 9], "out_channels": 8, "kernel": 3, "dilation": 2},
    {"kind": "dwconv2d", "input": [1, 8, 12, 12], "kernel": 5, "stride": 2, "multiplier": 2},
    {"kind": "dwconv2d", "input": [1, 8, 11, 11], "kernel": 3, "padding": "valid", "bias": True},
    {"kind": "bn", "input": [1, 8, 6, 6]},
    {"kind": "relu", "input": [2, 8, 6, 6]},
    {"kind": "relu", "input": [3, 10]},
    {"kind": "relu6", "input": [1, 8, 6, 6]},
    {"kind": "hswish", "input": [1, 8, 6, 6]},
    {"kind": "avgpool", "input": [1, 8, 6, 6], "kernel": 2},
    {"kind": "avgpool", "input": [1, 8, 7, 7], "kernel": 3, "stride": 2, "padding": 1},
    {"kind": "maxpool", "input": [1, 8, 7, 7], "kernel": 3, "stride": 2, "padding": 1},
    {"kind": "global_avgpool", "input": [1, 8, 6, 6]},
    {"kind": "fc", "input": [1, 8, 2, 2], "out_features": 5},
    {"kind": "fc", "input": [4, 12], "out_features": 3, "bias": False},
    {"kind": "add", "input": [1, 8, 6, 6], "n_inputs": 3},
    {"kind": "add", "input": [2, 7], "n_inputs": 2},
    {"kind": "concat", "input": [1, 8, 6, 6], "n_inputs": 3},
    {"kind": "se", "input": [1, 8, 6, 6], "reduction": 4, "gate": "hsigmoid"},
    {"kind": "se", "input": [2, 16, 4, 4], "reduction": 4, "gate": "sigmoid"},
    {"kind": "mbconv", "input": [1, 8, 8, 8], "out_channels": 8, "expand": 3, "kernel": 5,
     "se": True, "activation": "hswish"},
    {"kind": "mbconv", "input": [1, 8, 8, 8], "out_channels": 16, "expand": 6, "stride": 2},
    {"kind": "mbconv", "input": [1, 8, 8, 8], "out_channels": 8, "expand": 1, "activation": "relu"},
    {"kind": "sepconv", "input": [1, 8, 8, 8], "out_channels": 12, "kernel": 3, "stride": 2},
    {"kind": "sepconv", "input": [1, 8, 8, 8], "out_channels": 8, "kernel": 3, "dilation": 2,
     "repeats": 1},
    {"kind": "sequence", "input": [1, 3, 8, 8], "ops": [
        {"kind": "conv2d", "out_channels": 8, "kernel": 3, "stride": 2},
        {"kind": "bn"}, {"kind": "relu6"}, {"kind": "global_avgpool"},
        {"kind": "fc", "out_features": 10}]},
]

# Builds every plan with the torch runtime from the agent's zipapp and reports
# the output's shape and whether it is finite and non-zero.
SHAPES = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from hwprof_agent.runtime_torch import Runtime
import torch
rt = Runtime("cpu", seed=0)
out = []
for plan in json.loads(sys.stdin.read()):
    y = rt.output(plan)
    x = rt._rand(plan["input"])
    out.append({"shape": list(y.shape), "finite": bool(torch.isfinite(y).all()),
                "nonzero": float(y.abs().sum()) > 0, "grad": y.requires_grad,
                "inference": y.is_inference(), "x_std": float(x.std())})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def torch_py():
    if FOUND is None:
        pytest.skip("no Python interpreter with torch (set HWPROF_TORCH_PYTHON or make .venv-torch)")
    return FOUND[0]


@pytest.fixture(scope="module")
def torch_outputs(torch_py):
    plans = [parse_spec(raw).plan() for raw in EVERY_KIND]
    p = subprocess.run([torch_py, "-c", SHAPES, str(local_agent_path())], input=json.dumps(plans),
                       capture_output=True, text=True, timeout=300, env=agent_env())
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("i", range(len(EVERY_KIND)), ids=[r["kind"] for r in EVERY_KIND])
def test_torch_builds_every_kind_with_the_specs_output_shape(torch_outputs, i):
    spec = parse_spec(EVERY_KIND[i])
    out = torch_outputs[i]
    assert out["shape"] == spec.output_shape
    assert out["finite"] and out["nonzero"]
    assert not out["grad"] and out["inference"]  # inference mode, no autograd
    assert out["x_std"] > 0.5  # inputs are random, not zeros


def test_check_device_cpu_with_torch_reports_the_runtime(torch_py, hwprof_cli):
    p = subprocess.run([*hwprof_cli, "check-device", "cpu", "--runtime", "torch",
                        "--agent-python", torch_py, "--json"],
                       capture_output=True, text=True, timeout=300, env=agent_env())
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["ok"] and rep["problems"] == []
    assert rep["runtime"] == {"name": "torch", "version": FOUND[1].split("+")[0]}
    assert rep["environment"]["torch_threads"] == 1  # OMP_NUM_THREADS reaches the agent


@pytest.mark.skipif(FOUND is not None and FOUND[2], reason="this torch has a usable CUDA device")
def test_check_device_cuda_with_torch_says_what_is_missing(torch_py, hwprof_cli):
    p = subprocess.run([*hwprof_cli, "check-device", "cuda", "--runtime", "torch",
                        "--agent-python", torch_py, "--json"],
                       capture_output=True, text=True, timeout=300, env=agent_env())
    assert p.returncode == 2, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert not rep["ok"] and rep["runtime"]["name"] == "torch"
    text = " ".join(rep["problems"])
    assert "CPU-only build" in text or "no CUDA device" in text or "no NVIDIA driver" in text


def _build(hwprof_cli, out, *extra):
    p = subprocess.run([*hwprof_cli, "build-table", "--device", "cpu", "--space", "tiny",
                        "--out", str(out), "--quiet", *FAST, *extra],
                       capture_output=True, text=True, timeout=600, env=agent_env())
    return p


def test_torch_and_nnabla_tables_of_the_tiny_space_agree_in_structure(torch_py, hwprof_cli,
                                                                      tmp_path):
    t_out, n_out = tmp_path / "torch.parquet", tmp_path / "nnabla.parquet"
    p = _build(hwprof_cli, t_out, "--runtime", "torch", "--agent-python", torch_py)
    assert p.returncode == 0, p.stderr
    p = _build(hwprof_cli, n_out)
    assert p.returncode == 0, p.stderr
    tt, nt = read_table(t_out), read_table(n_out)
    assert sorted(tt.df["signature"]) == sorted(nt.df["signature"])
    assert len(tt.df) == len(nt.df) and tt.df["signature"].is_unique
    assert (tt.df["status"] == "ok").all() and (tt.df["median_ms"] > 0).all()
    assert set(tt.df["runtime"]) == {"torch"} and set(nt.df["runtime"]) == {"nnabla"}
    assert set(tt.df["runtime_version"]) == {FOUND[1].split("+")[0]}
    # the same CPU, another runtime: same fingerprint, another environment key
    assert set(tt.df["device_fingerprint"]) == set(nt.df["device_fingerprint"])
    assert set(tt.df["env_key"]).isdisjoint(set(nt.df["env_key"]))
    env = next(iter(tt.meta["environments"].values()))
    assert env["runtime"] == "torch" and env["torch_threads"] == 1
    by_sig = nt.df.set_index("signature")
    for _, row in tt.df.iterrows():
        assert row["kind"] == by_sig.loc[row["signature"], "kind"]
        assert row["macs"] == by_sig.loc[row["signature"], "macs"]

    # tables never mix runtimes silently: torch rows into the nnabla table are refused ...
    p = _build(hwprof_cli, n_out, "--runtime", "torch", "--agent-python", torch_py)
    assert p.returncode == 2
    assert p.stderr.startswith("hwprof: error:") and "holds nnabla rows" in p.stderr
    assert "--allow-mixed" in p.stderr and "Traceback" not in p.stderr
    assert len(read_table(n_out).df) == len(nt.df)
    # ... unless asked for
    p = _build(hwprof_cli, n_out, "--runtime", "torch", "--agent-python", torch_py,
               "--allow-mixed")
    assert p.returncode == 0, p.stderr
    mixed = read_table(n_out).df
    assert len(mixed) == 2 * len(nt.df)
    assert mixed.groupby("runtime")["signature"].nunique().to_dict() == {
        "nnabla": len(nt.df), "torch": len(nt.df)}


def test_agent_python_that_is_not_there_is_a_clear_error(hwprof_cli, tmp_path):
    p = subprocess.run([*hwprof_cli, "check-device", "cpu", "--runtime", "torch",
                        "--agent-python", str(tmp_path / "nope" / "python")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.startswith("hwprof: error: --agent-python") and "Traceback" not in p.stderr


def test_torch_missing_in_the_agent_interpreter_is_reported(hwprof_cli):
    """The project's own interpreter has nnabla; whether it has torch decides the answer."""
    if FOUND is not None and FOUND[0] == sys.executable:
        pytest.skip("this interpreter has torch")
    p = subprocess.run([*hwprof_cli, "check-device", "cpu", "--runtime", "torch", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    rep = json.loads(p.stdout)
    assert not rep["ok"] and "torch is not importable" in rep["problems"][0]
    assert "--agent-python" in rep["problems"][0]
