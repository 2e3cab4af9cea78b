"""nnabla runtime of the agent: op plan -> a callable that runs the op once.

A plan is either a primitive canonical spec (``kind`` plus its fields) or a
``chain`` of plans (``ops``, optional ``residual``) that hwprof derives from a
composite spec. Inputs and weights are random normal, never zeros.
"""

import math

from . import gpu_info

NAME = "nnabla"
CUDA_PACKAGE = "nnabla-ext-cuda120"
# On CUDA a sample's block of calls lasts at least this long, so the few
# microseconds of the synchronisation around it stay under ~0.2 % of it.


def _missing_extension(err):
    return ("the nnabla CUDA extension is not importable (%s): install it with `pip install %s` "
            "(the nnabla-ext-cudaXXX package matching your CUDA version and nnabla's version), "
            "or measure with --runtime torch" % (err, CUDA_PACKAGE))


def probe(device):
    """(version, problems, fingerprint extra, environment extra) for ``device``.

    For ``cuda[:N]`` it reports what is there (GPU name, compute capability,
    memory, driver, CUDA and cuDNN versions) and every missing piece.
    """
    problems, fp, env = [], {}, {}
    try:
        import nnabla
    except ImportError as e:
        return None, ["nnabla is not importable (%s): install it with `pip install nnabla`" % e], fp, env
    version = nnabla.__version__
    if device == "cpu":
        return version, problems, fp, env
    try:
        idx = gpu_info.cuda_index(device, NAME)
    except ValueError as e:
        return version, [str(e)], fp, env

    gfp, genv, gpu_problems = gpu_info.describe(idx)
    fp.update(gfp)
    env.update(genv)
    problems.extend(gpu_problems)
    try:
        import nnabla_ext.cuda as ext
        import nnabla_ext.cudnn  # noqa: F401  (the context hwprof measures in)
    except Exception as e:  # ImportError, or the extension's own GPU check failing
        problems.append(_missing_extension(e))
        return version, problems, fp, env
    env["cuda_version"] = getattr(ext, "__cuda_version__", None)
    env["cudnn_version"] = getattr(ext, "__cudnn_version__", None)
    env["ext_version"] = getattr(ext, "__version__", None)
    if env["ext_version"] and env["ext_version"] != version:
        problems.append("the nnabla CUDA extension %s does not match nnabla %s: install the same "
                        "version of both (e.g. `pip install %s==%s`)"
                        % (env["ext_version"], version, CUDA_PACKAGE, version))
    if gpu_problems:
        return version, problems, fp, env
    try:
        n = int(ext.get_device_count())
    except Exception as e:  # driver missing or broken
        problems.append("no usable CUDA device: %s" % e)
        return version, problems, fp, env
    if idx >= n:
        problems.append("CUDA device %d does not exist (nnabla sees %d)" % (idx, n))
    return version, problems, fp, env


class Runtime:
    def __init__(self, device, seed=0):
        import nnabla as nn
        import numpy as np
        from nnabla.ext_utils import get_extension_context
        self.np, self.nn = np, nn
        self.rng = np.random.RandomState(seed)
        self.device = device
        self._sync = None
        self.min_sample_ms = None
        if device == "cpu":
            import nnabla_ext.cpu as ext
            nn.set_default_context(get_extension_context("cpu"))
        else:
            import nnabla_ext.cuda as ext
            idx = gpu_info.cuda_index(device, NAME)
            nn.set_default_context(get_extension_context("cudnn", device_id=str(idx)))
            # cudaDeviceSynchronize on GPU idx (the extension wants an int id)
            self._sync = lambda: ext.device_synchronize(idx)
            self.min_sample_ms = gpu_info.CUDA_MIN_SAMPLE_MS
        self._clear_cache = getattr(ext, "clear_memory_cache", None)

    def sync(self):
        if self._sync is not None:
            self._sync()

    # -- tensors ------------------------------------------------------------
    def _rand(self, shape, scale=1.0):
        arr = (self.rng.standard_normal(shape) * scale).astype(self.np.float32)
        return self.nn.Variable.from_numpy_array(arr)

    def _weight(self, shape, fan_in):
        return self._rand(shape, math.sqrt(2.0 / max(1, fan_in)))

    def build(self, plan):
        """Return a function that runs the op (forward only) once."""
        if self._clear_cache is not None:
            # start every op from an empty memory cache, as a fresh process would: otherwise
            # where its buffers land depends on the ops measured before it, and the same op
            # measured in two builds can differ by tens of percent
            self._clear_cache()
        x = self._rand(plan["input"])
        y = self._op(plan, x)
        fwd = y.forward

        def run():
            fwd(clear_no_need_grad=True)
        return run

    # -- builders -----------------------------------------------------------
    def _op(self, p, x):
        kind = p["kind"]
        if p.get("dtype", "float32") != "float32":
            raise NotImplementedError("the nnabla runtime measures float32 only; got dtype %r"
                                      % p["dtype"])
        builder = getattr(self, "_b_" + kind, None)
        if builder is None:
            raise NotImplementedError("nnabla runtime cannot build op kind %r" % kind)
        return builder(p, x)

    def _b_chain(self, p, x):
        y = x
        for op in p["ops"]:
            y = self._op(op, y)
        if p.get("residual"):
            import nnabla.functions as F
            y = F.add2(y, x)
        return y

    @staticmethod
    def _pair(v):
        return tuple(v) if isinstance(v, list) else (v, v)

    def _b_conv2d(self, p, x):
        import nnabla.functions as F
        c, g = x.shape[1], p["groups"]
        k = self._pair(p["kernel"])
        w = self._weight((p["out_channels"], c // g) + k, c // g * k[0] * k[1])
        b = self._rand((p["out_channels"],), 0.1) if p["bias"] else None
        return F.convolution(x, w, b, pad=self._pair(p["padding"]), stride=self._pair(p["stride"]),
                             dilation=self._pair(p["dilation"]), group=g)

    def _b_dwconv2d(self, p, x):
        import nnabla.functions as F
        c, m = x.shape[1], p["multiplier"]
        k = self._pair(p["kernel"])
        w = self._weight((c * m,) + k, k[0] * k[1])
        b = self._rand((c * m,), 0.1) if p["bias"] else None
        return F.depthwise_convolution(x, w, b, pad=self._pair(p["padding"]),
                                       stride=self._pair(p["stride"]),
                                       dilation=self._pair(p["dilation"]), multiplier=m)

    def _b_bn(self, p, x):
        import nnabla.functions as F
        c = x.shape[1]
        shape = (1, c, 1, 1)
        beta, gamma, mean = self._rand(shape, 0.1), self._rand(shape, 0.1), self._rand(shape, 0.1)
        gamma.d += 1.0
        var = self.nn.Variable.from_numpy_array(
            (self.rng.uniform(0.5, 1.5, shape)).astype(self.np.float32))
        return F.batch_normalization(x, beta, gamma, mean, var, axes=[1], batch_stat=False)

    def _b_relu(self, p, x):
        import nnabla.functions as F
        return F.relu(x)

    def _b_relu6(self, p, x):
        import nnabla.functions as F
        return F.relu6(x)

    def _b_hswish(self, p, x):
        import nnabla.functions as F
        return F.mul2(x, F.mul_scalar(F.relu6(F.add_scalar(x, 3.0)), 1.0 / 6.0))

    def _pool_args(self, p):
        return dict(kernel=self._pair(p["kernel"]), stride=self._pair(p["stride"]),
                    pad=self._pair(p["padding"]))

    def _b_avgpool(self, p, x):
        import nnabla.functions as F
        return F.average_pooling(x, **self._pool_args(p))

    def _b_maxpool(self, p, x):
        import nnabla.functions as F
        return F.max_pooling(x, **self._pool_args(p))

    def _b_global_avgpool(self, p, x):
        import nnabla.functions as F
        return F.global_average_pooling(x)

    def _b_fc(self, p, x):
        import nnabla.functions as F
        fin = 1
        for d in x.shape[1:]:
            fin *= d
        w = self._weight((fin, p["out_features"]), fin)
        b = self._rand((p["out_features"],), 0.1) if p["bias"] else None
        return F.affine(x, w, b, base_axis=1)

    def _b_add(self, p, x):
        import nnabla.functions as F
        y = x
        for _ in range(p["n_inputs"] - 1):
            y = F.add2(y, self._rand(x.shape))
        return y

    def _b_concat(self, p, x):
        import nnabla.functions as F
        others = [self._rand(x.shape) for _ in range(p["n_inputs"] - 1)]
        return F.concatenate(x, *others, axis=1)

    def _b_se(self, p, x):
        import nnabla.functions as F
        n, c = x.shape[0], x.shape[1]
        r = c // p["reduction"]
        s = F.global_average_pooling(x)
        s = F.affine(s, self._weight((c, r), c), self._rand((r,), 0.1), base_axis=1)
        s = F.relu(s)
        s = F.affine(s, self._weight((r, c), r), self._rand((c,), 0.1), base_axis=1)
        if p["gate"] == "hsigmoid":
            s = F.mul_scalar(F.relu6(F.add_scalar(s, 3.0)), 1.0 / 6.0)
        else:
            s = F.sigmoid(s)
        return F.mul2(x, F.reshape(s, (n, c, 1, 1)))
