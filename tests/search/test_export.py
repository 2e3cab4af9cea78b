import nnabla as nn
import numpy as np

from hwprof.latency.spaces import get_space
from hwprof.search.export import load_nnp, save_nnp
from hwprof.search.supernet import SuperNet


def test_nnp_round_trip_gives_the_same_logits(tmp_path):
    nn.clear_parameters()
    sp = get_space("tiny")
    net = SuperNet(sp, np.random.RandomState(0), scope="child")
    choices = [lay.candidates[-1] for lay in sp.layers]
    x = nn.Variable((1,) + tuple(sp.input[1:]))
    y = net.child(x, choices, train=False)
    x.d = np.random.RandomState(1).randn(*x.shape)
    y.forward()
    want = y.d.copy()
    path = save_nnp(tmp_path / "model.nnp", net, choices)
    assert path.stat().st_size > 0
    nn.clear_parameters()
    xi, yo = load_nnp(path)
    xi.d = x.d
    yo.forward()
    np.testing.assert_allclose(yo.d, want, rtol=1e-4, atol=1e-5)
