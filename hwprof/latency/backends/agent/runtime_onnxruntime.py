"""ONNX Runtime of the agent: op plan -> an ONNX graph -> a callable that runs it once.

The same plans as :mod:`runtime_nnabla` (a primitive canonical spec, or a
``chain`` of plans with an optional ``residual``), written as one ONNX graph
per op with standard operators (``Conv``, ``BatchNormalization``,
``HardSwish``, ``Gemm``...) and run by an ``InferenceSession`` with the
optimisations ONNX Runtime applies by default (a chain's Conv + BN are fused,
as a deployed model's would be). Inputs and weights are random normal, never
zeros. Input and output stay bound to the session (``io_binding``), so a call
times the graph, not a NumPy copy.

CPU only (the CPU execution provider, MLAS kernels): a second runtime on the
same machine, with kernels of its own. Intra-op threads follow
``OMP_NUM_THREADS`` when it is set (as nnabla's and torch's do), else ONNX
Runtime's default; the environment records the number.

Every op of a build keeps its own session (the protocol samples the ops in
turn), and every session its own intra-op pool. Those pools' workers spin
after each run by default: with 2 threads, a build's hundred sessions kept
about as many spinning workers on this 2-vCPU machine (load 23; one op
measured in 9 minutes). Unless the pool is a single thread, spinning is
therefore off (``session.intra_op.allow_spinning`` 0, recorded in the
environment as ``ort_spinning``): each call then pays the workers' wake-up,
as a deployment that does not run back to back would.
"""

import math
import os
import sys

NAME = "onnxruntime"
OPSET = 14  # HardSwish needs 14


def _threads():
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


def _spinning():
    """Whether the sessions' intra-op workers spin: only for a one-thread pool (no workers)."""
    return _threads() == 1


def probe(device):
    """(version, problems, fingerprint extra, environment extra) for ``device``."""
    fp, env = {}, {}
    try:
        import numpy  # noqa: F401
        import onnx
        import onnxruntime as ort
    except ImportError as e:
        return None, ["onnxruntime is not importable by %s (%s): install it there (`pip install "
                      "onnxruntime onnx numpy`) or pass --agent-python with an interpreter that "
                      "has it" % (sys.executable, e)], fp, env
    env.update({"onnx_version": onnx.__version__, "ort_threads": _threads(),
                "ort_spinning": _spinning(),
                "ort_providers": ",".join(ort.get_available_providers())})
    if device != "cpu":
        return ort.__version__, ["the onnxruntime runtime measures on cpu only (asked for %s): "
                                 "use --runtime torch or nnabla on a GPU" % device], fp, env
    return ort.__version__, [], fp, env


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def _out_hw(hw, k, s, pad, dil=(1, 1)):
    return tuple((hw[i] + 2 * pad[i] - dil[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(2))


class _Graph:
    """Nodes and initializers of one op's graph, with each value's shape known."""

    def __init__(self, rt):
        self.rt, self.nodes, self.inits, self.n = rt, [], [], 0

    def name(self, stem):
        self.n += 1
        return "%s_%d" % (stem, self.n)

    def const(self, array):
        from onnx import numpy_helper
        name = self.name("w")
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op, inputs, **attrs):
        from onnx import helper
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out], **attrs))
        return out


class Runtime:
    def __init__(self, device, seed=0):
        import numpy as np
        import onnxruntime as ort
        if device != "cpu":
            raise ValueError("the onnxruntime runtime measures on cpu only (asked for %s)" % device)
        self.np, self.ort = np, ort
        self.rng = np.random.RandomState(seed)
        self.device = device
        self.min_sample_ms = None

    def sync(self):
        """CPU sessions return when the work is done: nothing is queued."""

    # -- tensors ------------------------------------------------------------
    def _rand(self, shape, scale=1.0):
        return (self.rng.standard_normal(tuple(shape)) * scale).astype(self.np.float32)

    def _weight(self, shape, fan_in):
        return self._rand(shape, math.sqrt(2.0 / max(1, fan_in)))

    def _session(self, plan):
        """(session, input array, output shape) for ``plan``."""
        from onnx import TensorProto, helper
        if _dtype_of(plan) != "float32":
            raise NotImplementedError("the onnxruntime runtime measures float32 only; got %r"
                                      % _dtype_of(plan))
        g = _Graph(self)
        shape = tuple(plan["input"])
        y, y_shape = self._op(g, plan, "x", shape)
        graph = helper.make_graph(
            g.nodes, "op", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
            [helper.make_tensor_value_info(y, TensorProto.FLOAT, list(y_shape))], g.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        opts = self.ort.SessionOptions()
        opts.intra_op_num_threads = _threads()
        opts.inter_op_num_threads = 1
        if not _spinning():
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
        sess = self.ort.InferenceSession(model.SerializeToString(), opts,
                                         providers=["CPUExecutionProvider"])
        return sess, self._rand(shape), (y, y_shape)

    def build(self, plan):
        """Return a function that runs the op (forward only) once."""
        sess, x, (y, y_shape) = self._session(plan)
        binding = sess.io_binding()
        binding.bind_cpu_input("x", x)
        out = self.ort.OrtValue.ortvalue_from_numpy(self.np.empty(y_shape, self.np.float32))
        binding.bind_ortvalue_output(y, out)
        run_bound = sess.run_with_iobinding

        def run():
            run_bound(binding)
        run.keep = (sess, x, out)  # the bound buffers live as long as the callable
        return run

    def output(self, plan):
        """The op's output on a random input (to check shapes against the spec)."""
        sess, x, _ = self._session(plan)
        return sess.run(None, {"x": x})[0]

    # -- builders: each returns (output name, output shape) -------------------
    def _op(self, g, p, x, shape):
        kind = p["kind"]
        builder = getattr(self, "_b_" + kind, None)
        if builder is None:
            raise NotImplementedError("onnxruntime runtime cannot build op kind %r" % kind)
        return builder(g, p, x, shape)

    def _b_chain(self, g, p, x, shape):
        y, y_shape = x, shape
        for op in p["ops"]:
            y, y_shape = self._op(g, op, y, y_shape)
        if p.get("residual"):
            y = g.node("Add", [y, x])
        return y, y_shape

    def _conv(self, g, p, x, shape, c_out, w, bias, groups):
        k, s = _pair(p["kernel"]), _pair(p["stride"])
        pad, dil = _pair(p["padding"]), _pair(p["dilation"])
        inputs = [x, g.const(w)] + ([g.const(self._rand((c_out,), 0.1))] if bias else [])
        y = g.node("Conv", inputs, kernel_shape=list(k), strides=list(s), dilations=list(dil),
                   pads=[pad[0], pad[1], pad[0], pad[1]], group=groups)
        return y, (shape[0], c_out) + _out_hw(shape[2:], k, s, pad, dil)

    def _b_conv2d(self, g, p, x, shape):
        c, grp, k = shape[1], p["groups"], _pair(p["kernel"])
        w = self._weight((p["out_channels"], c // grp) + k, c // grp * k[0] * k[1])
        return self._conv(g, p, x, shape, p["out_channels"], w, p["bias"], grp)

    def _b_dwconv2d(self, g, p, x, shape):
        c, m, k = shape[1], p["multiplier"], _pair(p["kernel"])
        w = self._weight((c * m, 1) + k, k[0] * k[1])
        return self._conv(g, p, x, shape, c * m, w, p["bias"], c)

    def _b_bn(self, g, p, x, shape):
        c = shape[1]
        gamma = self._rand((c,), 0.1) + 1.0
        beta, mean = self._rand((c,), 0.1), self._rand((c,), 0.1)
        var = self.rng.uniform(0.5, 1.5, (c,)).astype(self.np.float32)
        return g.node("BatchNormalization", [x] + [g.const(a) for a in (gamma, beta, mean, var)],
                      epsilon=1e-5), shape

    def _b_relu(self, g, p, x, shape):
        return g.node("Relu", [x]), shape

    def _b_relu6(self, g, p, x, shape):
        lo = g.const(self.np.array(0.0, self.np.float32))
        hi = g.const(self.np.array(6.0, self.np.float32))
        return g.node("Clip", [x, lo, hi]), shape

    def _b_hswish(self, g, p, x, shape):
        return g.node("HardSwish", [x]), shape

    def _pool(self, g, op, p, x, shape, **extra):
        k, s, pad = _pair(p["kernel"]), _pair(p["stride"]), _pair(p["padding"])
        y = g.node(op, [x], kernel_shape=list(k), strides=list(s),
                   pads=[pad[0], pad[1], pad[0], pad[1]], **extra)
        return y, shape[:2] + _out_hw(shape[2:], k, s, pad)

    def _b_avgpool(self, g, p, x, shape):
        # padding counts in the average, as in nnabla's and torch's defaults
        return self._pool(g, "AveragePool", p, x, shape, count_include_pad=1)

    def _b_maxpool(self, g, p, x, shape):
        return self._pool(g, "MaxPool", p, x, shape)

    def _b_global_avgpool(self, g, p, x, shape):
        return g.node("GlobalAveragePool", [x]), shape[:2] + (1, 1)

    def _gemm(self, g, x, fin, fout, bias=True):
        w = self._weight((fout, fin), fin)
        inputs = [x, g.const(w)] + ([g.const(self._rand((fout,), 0.1))] if bias else [])
        return g.node("Gemm", inputs, transB=1)

    def _b_fc(self, g, p, x, shape):
        fin = 1
        for d in shape[1:]:
            fin *= d
        flat = g.node("Flatten", [x], axis=1) if len(shape) > 2 else x
        return self._gemm(g, flat, fin, p["out_features"], p["bias"]), (shape[0], p["out_features"])

    def _b_add(self, g, p, x, shape):
        y = x
        for _ in range(p["n_inputs"] - 1):
            y = g.node("Add", [y, g.const(self._rand(shape))])
        return y, shape

    def _b_concat(self, g, p, x, shape):
        others = [g.const(self._rand(shape)) for _ in range(p["n_inputs"] - 1)]
        return (g.node("Concat", [x] + others, axis=1),
                (shape[0], shape[1] * p["n_inputs"]) + tuple(shape[2:]))

    def _b_se(self, g, p, x, shape):
        n, c = shape[0], shape[1]
        r = c // p["reduction"]
        s = g.node("Flatten", [g.node("GlobalAveragePool", [x])], axis=1)
        s = self._gemm(g, g.node("Relu", [self._gemm(g, s, c, r)]), r, c)
        if p["gate"] == "hsigmoid":  # torch's and nnabla's relu6(x + 3) / 6
            s = g.node("HardSigmoid", [s], alpha=1.0 / 6.0, beta=0.5)
        else:
            s = g.node("Sigmoid", [s])
        s = g.node("Reshape", [s, g.const(self.np.array([n, c, 1, 1], self.np.int64))])
        return g.node("Mul", [x, s]), shape


def _dtype_of(plan):
    while plan.get("kind") == "chain":
        plan = plan["ops"][0]
    return plan.get("dtype", "float32")
