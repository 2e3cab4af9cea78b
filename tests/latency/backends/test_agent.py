"""The on-device agent: self-contained, real nnabla ops, error rows, fingerprint."""

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from hwprof.latency.backends.agent import reference_ops
from hwprof.latency.backends.agent.runtime_nnabla import Runtime
from hwprof.latency.backends.bundle import agent_bytes, agent_hash, local_agent_path
from hwprof.latency.backends.local import PipeTransport
from hwprof.latency.backends.session import AgentLost, AgentSession
from hwprof.latency.specs import parse_spec

FAST = {"time_cap_s": 0.1, "min_samples": 3, "warmup_s": 0.005, "min_span_s": 0.0}

EVERY_KIND = [
    {"kind": "conv2d", "input": [1, 8, 12, 12], "out_channels": 6, "kernel": [3, 1], "stride": 2,
     "bias": True, "groups": 2},
    {"kind": "dwconv2d", "input": [1, 8, 12, 12], "kernel": 5, "stride": 2, "multiplier": 2},
    {"kind": "bn", "input": [1, 8, 6, 6]},
    {"kind": "relu", "input": [2, 8, 6, 6]},
    {"kind": "relu6", "input": [1, 8, 6, 6]},
    {"kind": "hswish", "input": [1, 8, 6, 6]},
    {"kind": "avgpool", "input": [1, 8, 6, 6], "kernel": 2},
    {"kind": "maxpool", "input": [1, 8, 7, 7], "kernel": 3, "stride": 2, "padding": 1},
    {"kind": "global_avgpool", "input": [1, 8, 6, 6]},
    {"kind": "fc", "input": [1, 8, 2, 2], "out_features": 5},
    {"kind": "add", "input": [1, 8, 6, 6], "n_inputs": 3},
    {"kind": "concat", "input": [1, 8, 6, 6], "n_inputs": 3},
    {"kind": "se", "input": [1, 8, 6, 6], "reduction": 4, "gate": "hsigmoid"},
    {"kind": "mbconv", "input": [1, 8, 8, 8], "out_channels": 8, "expand": 3, "kernel": 5,
     "se": True, "activation": "hswish"},
    {"kind": "mbconv", "input": [1, 8, 8, 8], "out_channels": 16, "expand": 6, "stride": 2},
    {"kind": "sepconv", "input": [1, 8, 8, 8], "out_channels": 12, "kernel": 3, "stride": 2},
    {"kind": "sepconv", "input": [1, 8, 8, 8], "out_channels": 8, "kernel": 3, "dilation": 2,
     "repeats": 1},
]


@pytest.mark.parametrize("raw", EVERY_KIND, ids=lambda r: r["kind"])
def test_nnabla_builds_every_kind_with_the_specs_output_shape(raw):
    import nnabla as nn

    spec = parse_spec(raw)
    rt = Runtime("cpu", seed=0)
    x = rt._rand(spec.input)
    y = rt._op(spec.plan(), x)
    y.forward()
    assert list(y.shape) == spec.output_shape
    assert np.isfinite(y.d).all() and np.abs(y.d).sum() > 0
    # inputs are random, not zeros
    assert x.d.std() > 0.5
    nn.clear_parameters()


def test_zipapp_is_deterministic_and_cached():
    assert agent_bytes() == agent_bytes()
    names = zipfile.ZipFile(local_agent_path()).namelist()
    assert "__main__.py" in names and "hwprof_agent/protocol.py" in names
    assert agent_hash() in local_agent_path().name


BLOCK_HWPROF = """
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "hwprof" or name.startswith("hwprof."):
            raise ImportError("hwprof is not installed on this board")
sys.meta_path.insert(0, Block())
sys.argv = [sys.argv[1], "--check"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_agent_runs_without_hwprof_importable(tmp_path):
    """As on a board without hwprof: every import of hwprof fails, cwd elsewhere."""
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(agent_bytes())
    p = subprocess.run([sys.executable, "-I", "-c", BLOCK_HWPROF, str(pyz)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    hello = json.loads(p.stdout.strip().splitlines()[-1])
    assert hello["ok"] and hello["runtime"] == "nnabla"
    assert hello["environment"]["runtime_version"]
    fp = hello["fingerprint"]
    assert fp["cores_logical"] >= 1 and fp["machine"] and fp["cpu_model"]
    assert len(hello["fingerprint_id"]) == 12


def test_session_measures_a_real_group_and_reports_failures():
    sess = AgentSession(PipeTransport([sys.executable, str(local_agent_path())]), "cpu")
    hello = sess.start({"seed": 0, "protocol": FAST, "runtime": "nnabla", "device": "cpu"})
    try:
        assert hello["protocol"]["time_cap_s"] == 0.1
        assert hello["reference_plan"] == reference_ops.PLANS["basket"]
        good = parse_spec({"kind": "relu6", "input": [1, 16, 16, 16]})
        other = parse_spec({"kind": "bn", "input": [1, 16, 16, 16]})
        bad = parse_spec({"kind": "relu6", "input": [1, 16, 16, 16], "dtype": "float16"})
        seen = []
        ans = sess.measure_group("g", [(s.signature, s.plan()) for s in (good, bad, other)],
                                 on_progress=seen.append)
        res = {r["id"]: r for r in ans["results"]}
        for s in (good, other):
            r = res[s.signature]
            assert r["status"] == "ok" and r["median_ms"] > 0
            assert len(r["samples_ms"]) == len(r["refs_ms"]) == r["n_samples"] >= 3
            assert all(x > 0 for x in r["refs_ms"]) and r["block_size"] >= 1
        err = res[bad.signature]
        assert err["status"] == "error" and "float32" in err["error"]
        assert "median_ms" not in err and "samples_ms" not in err
        # one reference sample before the first op sample and one after every op sample
        assert len(ans["timeline"]) == 1 + sum(len(res[s.signature]["samples_ms"])
                                               for s in (good, other))
        assert {m["phase"] for m in seen} == {"warmup", "rounds"}
        # the agent carries on after a failure; ops marked untimed are built in their place
        # (a warm-up progress line each) and give no result; by default (sample_context) the
        # one that built is sampled in the rounds as a spacer, each sample beside the reference
        seen.clear()
        again = sess.measure_group("g2", [(s.signature, s.plan()) for s in (other, good, bad)],
                                   untimed={other.signature, bad.signature},
                                   on_progress=seen.append)
        assert [r["id"] for r in again["results"]] == [good.signature]
        assert again["results"][0]["status"] == "ok"
        assert [m["op"] for m in seen if m["phase"] == "warmup"] == \
            [other.signature, good.signature, bad.signature]
        assert len(again["timeline"]) > 1 + len(again["results"][0]["samples_ms"])
    finally:
        sess.close()
    assert sess.t.proc.poll() == 0


def test_without_sample_context_untimed_ops_are_only_built():
    sess = AgentSession(PipeTransport([sys.executable, str(local_agent_path())]), "cpu")
    hello = sess.start({"seed": 0, "protocol": {**FAST, "sample_context": False},
                        "runtime": "nnabla", "device": "cpu"})
    try:
        assert hello["protocol"]["sample_context"] is False
        good = parse_spec({"kind": "relu6", "input": [1, 16, 16, 16]})
        other = parse_spec({"kind": "bn", "input": [1, 16, 16, 16]})
        ans = sess.measure_group("g", [(s.signature, s.plan()) for s in (other, good)],
                                 untimed={other.signature})
        assert [r["id"] for r in ans["results"]] == [good.signature]
        # no spacer: one reference sample before the first op sample and one after each
        assert len(ans["timeline"]) == 1 + len(ans["results"][0]["samples_ms"])
    finally:
        sess.close()


def _old_python():
    import glob
    import shutil
    for cand in ["python3.8", *glob.glob("/root/.pyenv/versions/3.8*/bin/python3.8"),
                 *glob.glob("/usr/bin/python3.8")]:
        path = shutil.which(cand) or (cand if cand.startswith("/") else None)
        if path and subprocess.run([path, "-c", "pass"], capture_output=True).returncode == 0:
            return path
    return None


def test_agent_source_is_python38_compatible(tmp_path):
    """The agent runs on boards with old Pythons: it must at least parse on 3.8."""
    py38 = _old_python()
    if py38 is None:
        pytest.skip("no Python 3.8 interpreter on this machine")
    pyz = tmp_path / "agent.pyz"
    pyz.write_bytes(agent_bytes())
    names = [n for n in zipfile.ZipFile(pyz).namelist() if n.endswith(".py")]
    code = ("import sys, zipfile; z = zipfile.ZipFile(sys.argv[1])\n"
            "for n in sys.argv[2:]: compile(z.read(n), n, 'exec')\n")
    p = subprocess.run([py38, "-c", code, str(pyz), *names], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_an_agent_killed_by_sigkill_is_reported_as_such():
    # what the kernel's OOM killer does to an agent that built too much at once
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    sess = AgentSession(PipeTransport([sys.executable, "-c", code]), "cpu", start_timeout=30)
    with pytest.raises(AgentLost, match="killed by SIGKILL.*out of memory"):
        sess.start({"seed": 0, "protocol": FAST, "runtime": "nnabla", "device": "cpu"})
