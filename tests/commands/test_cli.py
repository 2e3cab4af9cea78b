"""The CLI's contract: JSON outputs, help, and exit code 2 without tracebacks."""

import json
import os
import subprocess

import pytest

from hwprof.latency.spaces import get_space
from hwprof.latency.table import read_table


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    import sys
    out = tmp_path_factory.mktemp("cli") / "tiny.parquet"
    p = run([sys.executable, "-m", "hwprof", "build-table", "--device", "cpu", "--space", "tiny",
             "--out", str(out), "--time-cap", "0.2", "--min-samples", "5", "--min-span", "0",
             "--passes", "1"])
    assert p.returncode == 0, p.stderr
    assert "measured 12 op(s)" in p.stdout
    return out


def test_help_lists_verbs(hwprof_cli):
    p = run(hwprof_cli + ["--help"])
    assert p.returncode == 0
    for verb in ("build-table", "check-device", "spaces", "table"):
        assert verb in p.stdout
    p = run(hwprof_cli + ["build-table", "--help"])
    assert p.returncode == 0 and "--remeasure" in p.stdout and "resumed" in p.stdout


def test_check_device_cpu_json(hwprof_cli):
    p = run(hwprof_cli + ["check-device", "cpu", "--json"])
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["ok"] is True and rep["device"] == "cpu" and rep["problems"] == []
    assert rep["runtime"]["name"] == "nnabla" and rep["runtime"]["version"]
    assert rep["python"].startswith("3.")
    assert rep["fingerprint"]["cores_logical"] >= 1
    human = run(hwprof_cli + ["check-device", "cpu"])
    assert human.returncode == 0 and "usable" in human.stdout and "nnabla" in human.stdout


def test_table_show_json_contract(tiny_table, hwprof_cli):
    p = run(hwprof_cli + ["table", "show", str(tiny_table), "--json"])
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["rows"] == len(get_space("tiny").table_specs())
    from hwprof.latency.table import SCHEMA_VERSION
    assert s["schema_version"] == SCHEMA_VERSION == 4
    assert isinstance(s["devices"], list) and len(s["devices"]) == 1
    assert s["kinds"]["mbconv"] == 4 and s["errors"] == 0
    assert isinstance(s["unstable"], int)
    (level,) = s["reference"]["levels"].values()
    assert level["level_ms"] > 0
    assert s["machine"]["groups"] >= 1 and s["machine"]["spread"] >= 1.0
    assert len(s["least_trustworthy"]) == 5
    assert s["total_latency_ms"] > 0
    human = run(hwprof_cli + ["table", "show", str(tiny_table)])
    assert human.returncode == 0 and "12 rows" in human.stdout
    assert "reference" in human.stdout and "the reference moved" in human.stdout


def test_spaces_json_contract(hwprof_cli):
    p = run(hwprof_cli + ["spaces", "--json"])
    assert p.returncode == 0
    spaces = {s["name"]: s for s in json.loads(p.stdout)["spaces"]}
    cifar = spaces["mbv2-cifar"]
    assert cifar["input"] == [1, 3, 32, 32]
    assert len(cifar["layers"]) == 16
    assert "mbconv_e6_k7" in cifar["layers"][0]["candidates"]
    assert run(hwprof_cli + ["spaces"]).returncode == 0


def test_build_from_ops_file(tmp_path, hwprof_cli):
    ops = tmp_path / "my_ops.json"
    ops.write_text('{"kind": "relu6", "input": [1, 8, 8, 8]}\n'
                   '{"kind": "dwconv2d", "input": [1, 8, 8, 8], "kernel": 3}\n'
                   '{"input": [1, 8, 8, 8], "kind": "relu6"}\n')
    out = tmp_path / "my.parquet"
    p = run(hwprof_cli + ["build-table", "--ops", str(ops), "--out", str(out), "--json",
                          "--time-cap", "0.1", "--min-samples", "3", "--min-span", "0"])
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    # a measured table's default: several passes, each in a fresh agent process; the report
    # counts measurements (op x pass); the duplicate collapses
    # (plus up to BUILD_EXTRA_PASSES more for an op whose passes disagree, counted apart)
    from hwprof.latency.backends.agent.protocol import BUILD_EXTRA_PASSES, BUILD_PASSES
    assert rep["passes"] == BUILD_PASSES > 1 and rep["requested"] == 2
    assert 0 <= rep["extra_ops"] <= 2 * BUILD_EXTRA_PASSES
    assert rep["measured"] == 2 * BUILD_PASSES + rep["extra_ops"]
    assert len(read_table(out).df) == 2


@pytest.mark.parametrize("argv, msg", [
    (["build-table", "--space", "nope", "--out", "x.parquet"], "unknown space 'nope'"),
    (["build-table", "--device", "tpu", "--space", "tiny"], "unknown device 'tpu'; valid devices"),
    (["build-table", "--device", "cpu:3", "--space", "tiny"], "takes no index"),
    (["check-device", "quantum://x"], "unknown device"),
    (["table", "show", "missing.parquet"], "no table at"),
    (["build-table", "--ops", "missing.json"], "cannot read ops file"),
    (["build-table", "--space", "tiny", "--kinds", "conv2d"], "--kinds and --adaptive go with"),
    (["build-table", "--space", "tiny", "--passes", "0"], "passes must be a positive integer"),
])
def test_user_errors_exit_2_with_one_line(argv, msg, hwprof_cli, tmp_path):
    p = run(hwprof_cli + argv, cwd=tmp_path)
    assert p.returncode == 2
    assert msg in p.stderr
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_malformed_ops_file_and_wrong_schema(tmp_path, hwprof_cli, tiny_table):
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "conv2d", "input": [1, 3, 8, 8], "out_channels": 4, "kernel": 3}\n'
                   '{"kind": "conv2d", "input": [1, 3, 8, 8], "kernal": 3}\n')
    p = run(hwprof_cli + ["build-table", "--ops", str(bad), "--out", str(tmp_path / "o.parquet")])
    assert p.returncode == 2 and "line 2" in p.stderr and "kernal" in p.stderr
    assert not (tmp_path / "o.parquet").exists()

    import pyarrow.parquet as pq
    t = pq.read_table(tiny_table)
    meta = json.loads(t.schema.metadata[b"hwprof"])
    meta["schema_version"] = 7
    future = tmp_path / "future.parquet"
    pq.write_table(t.replace_schema_metadata({b"hwprof": json.dumps(meta)}), future)
    for argv in (["table", "show", str(future)],
                 ["build-table", "--space", "tiny", "--out", str(future)]):
        p = run(hwprof_cli + argv)
        assert p.returncode == 2 and "schema version 7" in p.stderr, p.stderr
        assert "Traceback" not in p.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_path_non_root(tmp_path, hwprof_cli):  # pragma: no cover - CI runs as root
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    p = run(hwprof_cli + ["build-table", "--space", "tiny", "--out", str(ro / "t.parquet")])
    assert p.returncode == 2 and "not writable" in p.stderr


def test_unwritable_path(tmp_path, hwprof_cli):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a directory")
    p = run(hwprof_cli + ["build-table", "--space", "tiny", "--out", str(blocker / "t.parquet")])
    assert p.returncode == 2 and "cannot write a table" in p.stderr, p.stderr
    p = run(hwprof_cli + ["build-table", "--space", "tiny", "--out", str(tmp_path)])
    assert p.returncode == 2 and "is a directory" in p.stderr
