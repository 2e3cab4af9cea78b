"""PyTorch runtime of the agent: op plan -> a callable that runs the op once.

The same plans as :mod:`runtime_nnabla` (a primitive canonical spec, or a
``chain`` of plans with an optional ``residual``), built from
``torch.nn.functional`` with each op's native kernel (``hardswish``,
``hardsigmoid``...), as a PyTorch user deploys them. Inputs and weights are
random normal, never zeros; everything runs in inference mode without
autograd.

On CUDA samples are timed with CUDA events (see :class:`_EventClock`): a
sample is the GPU's own time between an event recorded just before a block of
calls and one recorded right after it, read only once the second has
completed, so no un-synchronised launch is ever timed. Blocks last at least
``min_sample_ms`` (5 ms on CUDA, as the warm-up estimates per-call time), so
the launch latency of a block's first kernel, the one overhead still counted,
stays a fraction of a percent of a sample.
"""

import bisect
import math
import sys
import time

from . import gpu_info

NAME = "torch"
DTYPES = ("float32", "float16")


def probe(device):
    """(version, problems, fingerprint extra, environment extra) for ``device``."""
    fp, env = {}, {}
    try:
        import torch
    except ImportError as e:
        return None, ["torch is not importable by %s (%s): install PyTorch there (`pip install "
                      "torch`) or pass --agent-python with an interpreter that has it"
                      % (sys.executable, e)], fp, env
    version = torch.__version__.split("+")[0]
    env.update({"torch_build": torch.__version__, "torch_threads": torch.get_num_threads(),
                "torch_interop_threads": torch.get_num_interop_threads()})
    if device == "cpu":
        env["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
        return version, [], fp, env
    try:
        idx = gpu_info.cuda_index(device, NAME)
    except ValueError as e:
        return version, [str(e)], fp, env

    gfp, genv, problems = gpu_info.describe(idx)
    fp.update(gfp)
    env.update(genv)
    env["cuda_version"] = torch.version.cuda
    if torch.version.cuda is None:
        problems.append("this PyTorch %s is a CPU-only build (torch.version.cuda is None): install "
                        "a CUDA build of PyTorch to measure on %s" % (torch.__version__, device))
        return version, problems, fp, env
    if not torch.cuda.is_available():
        problems.append("PyTorch %s (CUDA %s) sees no CUDA device: no GPU, no driver, or "
                        "CUDA_VISIBLE_DEVICES hides it" % (torch.__version__, torch.version.cuda))
        return version, problems, fp, env
    count = torch.cuda.device_count()
    if idx >= count:
        return version, ["CUDA device %d does not exist (PyTorch sees %d)" % (idx, count)], fp, env
    props = torch.cuda.get_device_properties(idx)
    fp["gpu_name"] = fp.get("gpu_name") or props.name
    fp["gpu_compute_capability"] = "%d.%d" % (props.major, props.minor)
    fp["gpu_mem_mb"] = fp.get("gpu_mem_mb") or props.total_memory // (1024 * 1024)
    fp["gpu_sm_count"] = props.multi_processor_count
    env.update({
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
        else None,
        "torch_cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "torch_tf32_conv": bool(torch.backends.cudnn.allow_tf32),
        "torch_tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
    })
    return version, [], fp, env


class _Reading:
    """A clock reading that is a recorded CUDA event; its value in seconds is
    resolved (waiting for the event, hence for everything queued before it)
    when it is first used in arithmetic."""

    __slots__ = ("clock", "seq", "event", "_value")

    def __init__(self, clock, seq, event):
        self.clock, self.seq, self.event, self._value = clock, seq, event, None

    def __float__(self):
        if self._value is None:
            self.event.synchronize()
            self._value = self.clock.seconds(self.seq, self.event)
        return self._value

    def __sub__(self, other):
        return float(self) - float(other)

    def __rsub__(self, other):
        return float(other) - float(self)


class _EventClock:
    """Seconds on the GPU's timeline, read through CUDA events.

    ``sync()`` records an event on the device's stream; the next reading is
    that event, and a reading's value is only known once the event has
    completed, i.e. once every launch queued before it has finished. So a
    block timed as ``sync(); t = read(); launches...; sync(); read() - t`` is
    the device's time from just before the first launch to the end of the
    last kernel: never an un-synchronised launch, and neither the host's
    wake-up after a wait nor the recording of the end event is counted. A
    reading with no sync before it records a fresh event.

    ``elapsed_time`` is single precision, so events are measured from the
    latest *anchor* recorded before them, and a new anchor is laid every
    second: sub-microsecond resolution however long the build runs.
    """

    MAX_ANCHORS = 4096

    def __init__(self, torch, device):
        self.torch = torch
        self.stream = torch.cuda.current_stream(device)
        self.seq = 0
        first = self.torch.cuda.Event(enable_timing=True)
        first.record(self.stream)
        first.synchronize()
        self.anchor_seqs, self.anchors = [0], [(first, 0.0)]
        self.pending = None  # the event of the last sync(), until a reading takes it

    def _record(self):
        ev = self.torch.cuda.Event(enable_timing=True)
        ev.record(self.stream)
        self.seq += 1
        return self.seq, ev

    def seconds(self, seq, event):
        """Seconds from the first anchor to ``event`` (recorded as number ``seq``)."""
        i = max(0, bisect.bisect_right(self.anchor_seqs, seq) - 1)
        anchor, offset = self.anchors[i]
        t = offset + anchor.elapsed_time(event) / 1e3
        if t - self.anchors[-1][1] > 1.0 and seq > self.anchor_seqs[-1]:
            self.anchor_seqs.append(seq)
            self.anchors.append((event, t))
            if len(self.anchors) > self.MAX_ANCHORS:
                del self.anchor_seqs[1], self.anchors[1]
        return t

    def sync(self):
        self.pending = self._record()

    def read(self):
        (seq, ev), self.pending = self.pending or self._record(), None
        return _Reading(self, seq, ev)


class Runtime:
    def __init__(self, device, seed=0):
        import torch
        import torch.nn.functional as F
        self.torch, self.F = torch, F
        torch.set_grad_enabled(False)
        self._inference = torch.inference_mode()
        self._inference.__enter__()  # the agent's thread stays in inference mode
        self.gen = torch.Generator().manual_seed(seed)
        self.device = device
        if device == "cpu":
            self.dev = torch.device("cpu")
            self.clock = time.perf_counter
            self.min_sample_ms = None
        else:
            idx = gpu_info.cuda_index(device, NAME)
            torch.cuda.set_device(idx)
            self.dev = torch.device("cuda", idx)
            self._events = _EventClock(torch, self.dev)
            self.clock = self._events.read
            self.min_sample_ms = gpu_info.CUDA_MIN_SAMPLE_MS

    def sync(self):
        """Mark the end of queued work: the next clock reading waits for all of it."""
        if self.dev.type == "cuda":
            self._events.sync()

    # -- tensors ------------------------------------------------------------
    def _rand(self, shape, scale=1.0, dtype="float32"):
        t = self.torch.randn(tuple(shape), generator=self.gen) * scale
        return t.to(device=self.dev, dtype=getattr(self.torch, dtype))

    def _like(self, x, shape, scale=1.0):
        return self._rand(shape, scale).to(dtype=x.dtype)

    def _weight(self, x, shape, fan_in):
        return self._like(x, shape, math.sqrt(2.0 / max(1, fan_in)))

    def build(self, plan):
        """Return a function that runs the op (forward only) once."""
        x = self._rand(plan["input"], dtype=_dtype_of(plan))
        f, _ = self._op(plan, x)

        def run():
            f(x)
        return run

    def output(self, plan):
        """The op's output on a random input (to check shapes against the spec)."""
        x = self._rand(plan["input"], dtype=_dtype_of(plan))
        return self._op(plan, x)[1]

    # -- builders: each returns f(x) -> y; _op runs it once to get y's shape --
    def _op(self, p, x):
        kind = p["kind"]
        if kind != "chain" and p.get("dtype", "float32") not in DTYPES:
            raise NotImplementedError("torch runtime measures %s; got dtype %r"
                                      % (", ".join(DTYPES), p["dtype"]))
        builder = getattr(self, "_b_" + kind, None)
        if builder is None:
            raise NotImplementedError("torch runtime cannot build op kind %r" % kind)
        f = builder(p, x)
        return f, f(x)

    def _b_chain(self, p, x):
        fns, y = [], x
        for op in p["ops"]:
            f, y = self._op(op, y)
            fns.append(f)
        residual = bool(p.get("residual"))

        def chain(t):
            y = t
            for f in fns:
                y = f(y)
            return y + t if residual else y
        return chain

    @staticmethod
    def _pair(v):
        return tuple(v) if isinstance(v, (list, tuple)) else (v, v)

    def _conv(self, x, w, b, p, groups):
        F, stride, pad, dil = self.F, self._pair(p["stride"]), self._pair(p["padding"]), \
            self._pair(p["dilation"])
        return lambda t: F.conv2d(t, w, b, stride, pad, dil, groups)

    def _b_conv2d(self, p, x):
        c, g, k = x.shape[1], p["groups"], self._pair(p["kernel"])
        w = self._weight(x, (p["out_channels"], c // g) + k, c // g * k[0] * k[1])
        b = self._like(x, (p["out_channels"],), 0.1) if p["bias"] else None
        return self._conv(x, w, b, p, g)

    def _b_dwconv2d(self, p, x):
        c, m, k = x.shape[1], p["multiplier"], self._pair(p["kernel"])
        w = self._weight(x, (c * m, 1) + k, k[0] * k[1])
        b = self._like(x, (c * m,), 0.1) if p["bias"] else None
        return self._conv(x, w, b, p, c)

    def _b_bn(self, p, x):
        c = x.shape[1]
        beta, mean = self._like(x, (c,), 0.1), self._like(x, (c,), 0.1)
        gamma = self._like(x, (c,), 0.1) + 1.0
        var = (self.torch.rand((c,), generator=self.gen) + 0.5).to(device=self.dev, dtype=x.dtype)
        F = self.F
        return lambda t: F.batch_norm(t, mean, var, gamma, beta, False, 0.0, 1e-5)

    def _b_relu(self, p, x):
        return self.F.relu

    def _b_relu6(self, p, x):
        return self.F.relu6

    def _b_hswish(self, p, x):
        return self.F.hardswish

    def _pool(self, fn, p):
        k, s, pad = self._pair(p["kernel"]), self._pair(p["stride"]), self._pair(p["padding"])
        return lambda t: fn(t, k, s, pad)

    def _b_avgpool(self, p, x):
        return self._pool(self.F.avg_pool2d, p)

    def _b_maxpool(self, p, x):
        return self._pool(self.F.max_pool2d, p)

    def _b_global_avgpool(self, p, x):
        F = self.F
        return lambda t: F.adaptive_avg_pool2d(t, 1)

    def _b_fc(self, p, x):
        fin = 1
        for d in x.shape[1:]:
            fin *= d
        w = self._weight(x, (p["out_features"], fin), fin)
        b = self._like(x, (p["out_features"],), 0.1) if p["bias"] else None
        F = self.F
        return lambda t: F.linear(t.flatten(1), w, b)

    def _b_add(self, p, x):
        others = [self._like(x, x.shape) for _ in range(p["n_inputs"] - 1)]

        def add(t):
            y = t
            for o in others:
                y = y + o
            return y
        return add

    def _b_concat(self, p, x):
        others = [self._like(x, x.shape) for _ in range(p["n_inputs"] - 1)]
        cat = self.torch.cat
        return lambda t: cat([t] + others, 1)

    def _b_se(self, p, x):
        F = self.F
        n, c = x.shape[0], x.shape[1]
        r = c // p["reduction"]
        w1, b1 = self._weight(x, (r, c), c), self._like(x, (r,), 0.1)
        w2, b2 = self._weight(x, (c, r), r), self._like(x, (c,), 0.1)
        gate = F.hardsigmoid if p["gate"] == "hsigmoid" else self.torch.sigmoid

        def se(t):
            s = F.adaptive_avg_pool2d(t, 1).flatten(1)
            s = gate(F.linear(F.relu(F.linear(s, w1, b1)), w2, b2))
            return t * s.reshape(n, c, 1, 1)
        return se


def _dtype_of(plan):
    while plan.get("kind") == "chain":
        plan = plan["ops"][0]
    dtype = plan.get("dtype", "float32")
    return dtype if dtype in DTYPES else "float32"
