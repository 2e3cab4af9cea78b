"""Reference networks written as model files, for checks and examples.

    mobilenet_v2_nnp("mbv2.nnp")                 # MobileNetV2 1.0, 224x224, 1000 classes
    save_onnx("mbv2.nnp", "mbv2.onnx")           # through nnabla's converter ('onnx' extra)

Built with nnabla's parametric functions (random weights), the way a user's
training script would write them, so the lowering is checked on graphs hwprof
did not write itself.
"""

from __future__ import annotations

import os
from pathlib import Path

# MobileNetV2 (Sandler et al. 2018, table 2): expansion t, width c, repeats n, stride s
MBV2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                 (6, 160, 3, 2), (6, 320, 1, 1))


def _divisible(v: float, d: int = 8) -> int:
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


def _conv_bn(x, cout: int, k: int, stride: int, rng, act: bool = True, depthwise: bool = False):
    import nnabla.functions as F
    import nnabla.parametric_functions as PF
    pad = (k // 2, k // 2)
    if depthwise:
        h = PF.depthwise_convolution(x, (k, k), pad=pad, stride=(stride, stride),
                                     with_bias=False, rng=rng, name="dw")
    else:
        h = PF.convolution(x, cout, (k, k), pad=pad, stride=(stride, stride), with_bias=False,
                           rng=rng, name="conv")
    h = PF.batch_normalization(h, batch_stat=False, name="bn")
    return F.relu6(h) if act else h


def _inverted_residual(x, cout: int, t: int, stride: int, rng):
    import nnabla as nn
    cin = x.shape[1]
    h = x
    if t != 1:
        with nn.parameter_scope("expand"):
            h = _conv_bn(h, cin * t, 1, 1, rng)
    with nn.parameter_scope("depthwise"):
        h = _conv_bn(h, h.shape[1], 3, stride, rng, depthwise=True)
    with nn.parameter_scope("project"):
        h = _conv_bn(h, cout, 1, 1, rng, act=False)
    return h + x if stride == 1 and cin == cout else h


def mobilenet_v2(x, *, width: float = 1.0, classes: int = 1000, rng=None):
    """The MobileNetV2 inference graph on ``x`` (logits; no softmax)."""
    import nnabla as nn
    import nnabla.functions as F
    import nnabla.parametric_functions as PF
    import numpy as np
    rng = rng or np.random.RandomState(0)
    with nn.parameter_scope("first"):
        h = _conv_bn(x, _divisible(32 * width), 3, 2, rng)
    i = 0
    for t, c, n, s in MBV2_SETTINGS:
        for j in range(n):
            with nn.parameter_scope(f"block{i}"):
                h = _inverted_residual(h, _divisible(c * width), t, s if j == 0 else 1, rng)
            i += 1
    with nn.parameter_scope("last"):
        h = _conv_bn(h, _divisible(1280 * max(1.0, width)), 1, 1, rng)
    h = F.global_average_pooling(h)
    return PF.affine(h, classes, rng=rng, name="classifier")


def save_graph(path: str | os.PathLike, x, y) -> Path:
    """Write the graph from ``x`` to ``y`` as an .nnp (inputs ``x``, outputs ``y``)."""
    from nnabla.utils.save import save
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save(str(path), {"networks": [{"name": "net", "batch_size": x.shape[0], "outputs": {"y": y},
                                   "names": {"x": x}}],
                     "executors": [{"name": "runtime", "network": "net", "data": ["x"],
                                    "output": ["y"]}]})
    return path


def mobilenet_v2_nnp(path: str | os.PathLike, *, resolution: int = 224, width: float = 1.0,
                     classes: int = 1000, seed: int = 0) -> Path:
    """MobileNetV2 written as an .nnp (its own parameter scope; the global one is untouched)."""
    import nnabla as nn
    import numpy as np
    x = nn.Variable((1, 3, resolution, resolution))
    with nn.parameter_scope("mobilenet_v2"):
        y = mobilenet_v2(x, width=width, classes=classes, rng=np.random.RandomState(seed))
        try:
            return save_graph(path, x, y)
        finally:
            nn.get_current_parameter_scope().clear()


def deep_chain_nnp(path: str | os.PathLike, *, blocks: int = 34, resolution: int = 32,
                   channels: int = 32, seed: int = 0) -> Path:
    """A deep plain network: ``blocks`` of conv 3x3 + BN + ReLU6 (3 layers each), then pool
    and a classifier: 3 * blocks + 2 layers (34 blocks: 104 layers)."""
    import nnabla as nn
    import nnabla.functions as F
    import nnabla.parametric_functions as PF
    import numpy as np
    rng = np.random.RandomState(seed)
    x = nn.Variable((1, 3, resolution, resolution))
    with nn.parameter_scope("deep_chain"):
        h = x
        for i in range(blocks):
            with nn.parameter_scope(f"b{i}"):
                h = _conv_bn(h, channels, 3, 1, rng)
        y = PF.affine(F.global_average_pooling(h), 10, rng=rng, name="fc")
        try:
            return save_graph(path, x, y)
        finally:
            nn.get_current_parameter_scope().clear()


def save_onnx(nnp: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Convert an .nnp to ONNX with nnabla's converter (the 'onnx' extra)."""
    from hwprof.latency.modelfile.nnp import _quiet
    from hwprof.latency.modelfile.onnx import _require_converter
    _require_converter()
    from nnabla.utils.converter.nnabla import NnpImporter
    from nnabla.utils.converter.onnx import OnnxExporter
    with _quiet():
        graph = NnpImporter(str(nnp), expand_network=True).execute()
        OnnxExporter(graph, -1, -1).execute(str(out))
    return Path(out)
