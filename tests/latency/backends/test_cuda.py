"""The cuda[:N] backend: what is missing is reported clearly; real GPU builds when there is one.

Tests marked ``cuda`` measure on a real GPU and skip cleanly without one; the
rest check, on any machine, what a user without a GPU or without the runtime's
CUDA support is told.
"""

import importlib.util
import json
import struct
import subprocess

import pytest

from hwprof.errors import DeviceError
from hwprof.latency.backends.agent import gpu_info
from hwprof.latency.backends.registry import get_backend
from hwprof.latency.table import read_table
from tests.latency.backends.torch_python import agent_env, torch_python

HAS_NNABLA_CUDA = importlib.util.find_spec("nnabla_ext.cuda") is not None
FAST = ["--time-cap", "0.3", "--min-samples", "5", "--min-span", "0"]
OPS = [
    {"kind": "conv2d", "input": [8, 32, 32, 32], "out_channels": 64, "kernel": 3},
    {"kind": "dwconv2d", "input": [8, 64, 32, 32], "kernel": 3, "stride": 2},
    {"kind": "relu6", "input": [8, 64, 16, 16]},
    {"kind": "mbconv", "input": [8, 32, 16, 16], "out_channels": 32, "expand": 6, "se": True,
     "activation": "hswish"},
]


def _libcuda_loadable():
    return gpu_info._load_libcuda() is not None


def _check(hwprof_cli, device, *extra):
    p = subprocess.run([*hwprof_cli, "check-device", device, "--json", *extra],
                       capture_output=True, text=True, timeout=300, env=agent_env())
    return p.returncode, json.loads(p.stdout) if p.stdout.strip().startswith("{") else None, p


def _ops_file(tmp_path):
    path = tmp_path / "ops.jsonl"
    path.write_text("\n".join(json.dumps(o) for o in OPS) + "\n")
    return path


# --------------------------------------------------------------------------- #
# without a GPU or the extension: clear reports, exit 2


@pytest.mark.skipif(HAS_NNABLA_CUDA, reason="nnabla's CUDA extension is installed here")
def test_check_device_cuda_names_the_missing_extension(hwprof_cli):
    rc, rep, p = _check(hwprof_cli, "cuda")
    assert rc == 2, p.stderr
    assert rep["ok"] is False and rep["device"] == "cuda"
    assert rep["runtime"]["name"] == "nnabla" and rep["runtime"]["version"]
    assert any("pip install nnabla-ext-cuda120" in prob for prob in rep["problems"])
    # what is there is reported too: the host's fingerprint and the driver's state
    assert rep["fingerprint"]["cpu_model"] and "driver_version" in rep["environment"]
    if not _libcuda_loadable():
        assert any("no NVIDIA driver" in prob for prob in rep["problems"])


@pytest.mark.skipif(HAS_NNABLA_CUDA, reason="nnabla's CUDA extension is installed here")
def test_build_table_on_cuda_without_extension_is_one_clear_error(hwprof_cli, tmp_path):
    out = tmp_path / "gpu.parquet"
    p = subprocess.run([*hwprof_cli, "build-table", "--device", "cuda:0", "--ops",
                        str(_ops_file(tmp_path)), "--out", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwprof: error: cuda:0: device not usable")
    assert "nnabla-ext-cuda120" in lines[0]
    assert not out.exists()


def test_cuda_device_strings(monkeypatch):
    monkeypatch.delenv("HWPROF_CUDA_DEVICE", raising=False)
    assert get_backend("cuda").agent_device == "cuda:0"
    assert get_backend("cuda:3").agent_device == "cuda:3"
    for bad in ("cuda:x", "cuda:-1", "cuda:0:1"):
        with pytest.raises(DeviceError):
            get_backend(bad)


def test_runtimes_refuse_devices_they_do_not_know():
    from hwprof.latency.backends.agent import runtime_nnabla
    _, problems, _, _ = runtime_nnabla.probe("tpu:0")
    assert problems and "expected cpu or cuda[:N]" in problems[0]


def test_driver_version_is_read_from_the_kernel_module_banner():
    closed = ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 "
              "UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n")
    open_km = ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  560.35.03  Release Build"
               "  (dvs-builder@U16-I3-B03-4-3)  Fri Aug 16 21:22:33 UTC 2024\n")
    assert gpu_info.parse_driver_version(closed) == "550.54.14"
    assert gpu_info.parse_driver_version(open_km) == "560.35.03"
    assert gpu_info.parse_driver_version("") is None


@pytest.mark.skipif(_libcuda_loadable(), reason="this machine has an NVIDIA driver")
def test_gpu_description_without_a_driver_says_so():
    fp, env, problems = gpu_info.describe(0)
    assert fp["gpu_name"] is None and env["driver_version"] is None
    assert problems == ["no NVIDIA driver on this machine (libcuda.so.1 cannot be loaded): "
                        "it has no usable GPU"]


# --------------------------------------------------------------------------- #
# on a real GPU


@pytest.fixture(scope="module")
def nnabla_gpu(request):
    import sys
    rc, rep, p = _check([sys.executable, "-m", "hwprof"], "cuda:0")
    if rc != 0:
        pytest.skip("no GPU usable by nnabla here: " + "; ".join((rep or {}).get("problems", [])))
    return rep


@pytest.fixture(scope="module")
def torch_gpu():
    found = torch_python()
    if found is None or not found[2]:
        pytest.skip("no PyTorch with a usable CUDA device here")
    return found[0]


def _assert_gpu_table(out, runtime):
    t = read_table(out)
    df = t.df
    assert len(df) == len(OPS) and (df["status"] == "ok").all() and (df["median_ms"] > 0).all()
    assert set(df["runtime"]) == {runtime}
    fp = t.meta["devices"][df["device_fingerprint"].iloc[0]]
    assert fp["gpu_name"] and fp["gpu_compute_capability"] and fp["gpu_mem_mb"] > 0
    assert set(df["board_model"]) == {fp["gpu_name"]}
    env = next(iter(t.meta["environments"].values()))
    assert env["driver_version"] and env["cuda_version"] and env["cudnn_version"]
    # blocks long enough that the synchronisation around each is negligible
    assert t.meta["protocol"]["min_sample_ms"] >= 5.0
    assert (df["block_size"] * df["median_ms"] >= 4.0).all()
    return t


@pytest.mark.cuda
def test_nnabla_builds_a_gpu_table(nnabla_gpu, hwprof_cli, tmp_path):
    out = tmp_path / "gpu-nnabla.parquet"
    p = subprocess.run([*hwprof_cli, "build-table", "--device", "cuda:0", "--ops",
                        str(_ops_file(tmp_path)), "--out", str(out), "--quiet", *FAST],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    _assert_gpu_table(out, "nnabla")


@pytest.mark.cuda
def test_torch_builds_a_gpu_table_with_cuda_events(torch_gpu, hwprof_cli, tmp_path):
    out = tmp_path / "gpu-torch.parquet"
    rc, rep, p = _check(hwprof_cli, "cuda:0", "--runtime", "torch", "--agent-python", torch_gpu)
    assert rc == 0, rep
    assert rep["fingerprint"]["gpu_name"] and rep["environment"]["cuda_version"]
    p = subprocess.run([*hwprof_cli, "build-table", "--device", "cuda:0", "--runtime", "torch",
                        "--agent-python", torch_gpu, "--ops", str(_ops_file(tmp_path)),
                        "--out", str(out), "--quiet", *FAST],
                       capture_output=True, text=True, timeout=600, env=agent_env())
    assert p.returncode == 0, p.stderr
    t = _assert_gpu_table(out, "torch")
    # a bigger op takes longer on the GPU too (the events time real work)
    med = t.df.set_index("kind")["median_ms"]
    assert med["conv2d"] > med["relu6"]


# --------------------------------------------------------------------------- #
# the torch runtime's CUDA-event clock, on a simulated GPU (a fake clock for the
# timing loop: the host queues kernels, the device runs them in order)


class _SimGpu:
    def __init__(self, kernel_s, launch_s=5e-6, wake_s=20e-6):
        self.host = 0.0      # host time
        self.busy = 0.0      # when the device finishes what is queued
        self.kernel_s, self.launch_s, self.wake_s = kernel_s, launch_s, wake_s

    def launch(self):
        self.host += self.launch_s
        self.busy = max(self.busy, self.host) + self.kernel_s

    def torch(self):
        gpu = self

        class Event:
            def __init__(self, enable_timing=False):
                self.t = None

            def record(self, stream=None):
                gpu.host += gpu.launch_s
                self.t = max(gpu.busy, gpu.host)
                gpu.busy = self.t

            def synchronize(self):
                gpu.host = max(gpu.host, self.t) + gpu.wake_s

            def elapsed_time(self, end):
                ms = (end.t - self.t) * 1e3  # milliseconds in single precision, as CUDA gives them
                return struct.unpack("f", struct.pack("f", ms))[0]

        class Cuda:
            pass

        cuda = Cuda()
        cuda.Event = Event
        cuda.current_stream = lambda device=None: None
        t = Cuda()
        t.cuda = cuda
        return t


@pytest.mark.parametrize("kernel_us", [3.0, 40.0, 900.0])
def test_event_clock_times_the_gpu_work_of_a_block_not_the_host_wakeup(kernel_us):
    from hwprof.latency.backends.agent import interleave, protocol
    from hwprof.latency.backends.agent.runtime_torch import _EventClock

    gpu = _SimGpu(kernel_us * 1e-6)
    clock = _EventClock(gpu.torch(), None)
    timer = interleave.Timer(gpu.launch, clock.read, clock.sync)  # the agent's timed blocks
    timer.warm_up(protocol.settings({"min_sample_ms": 5.0}))
    samples = sorted(timer.time_block() * 1e3 for _ in range(9))
    median_ms = samples[4]
    # GPU-bound ops: the kernel time; launch-bound ones: the host's launch rate. The 20 us
    # the host needs to wake after each wait is never counted; one launch latency per block is.
    expect_ms = max(kernel_us * 1e-3, gpu.launch_s * 1e3)
    assert median_ms == pytest.approx(expect_ms, rel=0.01)
    assert median_ms >= expect_ms


def test_event_clock_readings_wait_for_the_work_queued_before_them():
    from hwprof.latency.backends.agent.runtime_torch import _EventClock

    gpu = _SimGpu(2e-3)  # 2 ms kernels: launches return long before the device is done
    clock = _EventClock(gpu.torch(), None)
    clock.sync()
    t = clock.read()
    for _ in range(10):
        gpu.launch()
    assert gpu.host < 1e-3  # the host has only queued the work
    clock.sync()
    dt = clock.read() - t
    assert dt == pytest.approx(10 * 2e-3 + gpu.launch_s, rel=1e-6)
    assert gpu.host >= 20e-3  # the reading waited for all ten kernels


def test_event_clock_stays_precise_over_a_long_build():
    from hwprof.latency.backends.agent.runtime_torch import _EventClock

    gpu = _SimGpu(1e-6)
    clock = _EventClock(gpu.torch(), None)
    for _ in range(2400):  # an hour of ops, read as the protocol reads them
        gpu.host += 1.5
        clock.sync()
        float(clock.read())
    assert float(clock.read()) > 3600.0
    t0 = clock.read()
    gpu.launch()
    clock.sync()
    t1 = clock.read()
    # float32 milliseconds since the start would be 0.25 ms coarse by now
    assert t1 - t0 == pytest.approx(2 * gpu.launch_s, rel=1e-6)  # launch-bound: 1 us kernel
    # a reading taken before the anchor moved on still resolves exactly, after later ones
    early = clock.read()
    for _ in range(3):
        gpu.host += 2.0
        gpu.launch()
        clock.sync()
        float(clock.read())
    late = clock.read()
    truth = late.event.t - early.event.t  # the simulated device's own timestamps
    assert truth > 6.0 and late - early == pytest.approx(truth, abs=0.2e-6)
