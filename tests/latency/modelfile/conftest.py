import numpy as np
import pytest

SE_SPACE = """\
format: hwprof-space/1
description: "small MobileNetV3-like space: ReLU, h-swish, squeeze-excite"
input: [1, 3, 32, 32]
stem:
  - conv: {out: 16, kernel: 3, stride: 2, act: hswish}
  - mbconv: {out: 16, expand: 1, kernel: 3, act: relu}
stages:
  - {out: 24, stride: 2, depth: [1, 2], se: true, act: relu}
  - {out: 32, stride: 2, depth: [1, 2], se: true, act: hswish}
candidates:
  - mbconv: {expand: [3, 4], kernel: [3, 5]}
head:
  - conv: {out: 96, kernel: 1, act: hswish}
  - pool: global
  - conv: {out: 128, kernel: 1, bn: false, act: hswish}
  - classifier: {classes: 10}
"""


@pytest.fixture
def se_space_file(tmp_path):
    path = tmp_path / "se-space.yaml"
    path.write_text(SE_SPACE)
    return path


@pytest.fixture
def export_arch():
    """export(space, choices, path): the .nnp `hwprof search` writes for that architecture."""
    import nnabla as nn

    from hwprof.search.export import save_nnp
    from hwprof.search.supernet import SuperNet

    def export(space, choices, path):
        nn.clear_parameters()
        try:
            return save_nnp(path, SuperNet(space, np.random.RandomState(0)), choices)
        finally:
            nn.clear_parameters()
    return export
