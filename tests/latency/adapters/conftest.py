"""LUT files in the published ProxylessNAS / Once-for-All yaml format, written by the tests."""

import random

import pytest
import yaml

from hwprof.latency.spaces import get_space


def pnas_key(ltype, inp, out, expand=None, kernel=None, stride=None, idskip=None, se=None, hs=None):
    """A key as ProxylessNAS' / OFA's latency estimators build it (shape = H x W x C)."""
    parts = [ltype, "input:" + "x".join(map(str, inp)), "output:" + "x".join(map(str, out))]
    if ltype == "expanded_conv":
        parts += [f"expand:{expand}", f"kernel:{kernel}", f"stride:{stride}", f"idskip:{idskip}"]
        if se is not None:
            parts += [f"se:{se}", f"hs:{hs}"]
    return "-".join(parts)


def proxyless_mobile_lut(seed=0):
    """A full LUT of the ProxylessNAS mobile space: every key its latency estimator queries.

    Returns (lut, arch_keys) where arch_keys(choices) lists the keys of one architecture.
    """
    rng = random.Random(seed)

    def val():
        return {"count": rng.randint(50, 1000), "mean": round(rng.uniform(0.2, 9.0), 6),
                "var": round(rng.uniform(0.0, 0.05), 8)}

    lut = {}
    lut[pnas_key("Conv", [224, 224, 3], [112, 112, 32])] = val()
    lut[pnas_key("expanded_conv", [112, 112, 32], [112, 112, 16], 1, 3, 1, 0)] = val()
    widths, depths, strides = [24, 40, 80, 96, 192, 320], [4, 4, 4, 4, 4, 1], [2, 2, 2, 1, 2, 1]
    fsize, cin = 112, 16
    layers = []
    for w, d, s in zip(widths, depths, strides):
        for i in range(d):
            stride = s if i == 0 else 1
            out = (fsize - 1) // stride + 1
            idskip = int(stride == 1 and cin == w)
            keys = {}
            for e in (3, 6):
                for k in (3, 5, 7):
                    key = pnas_key("expanded_conv", [fsize, fsize, cin], [out, out, w], e, k, stride,
                                   idskip)
                    lut[key] = val()
                    keys[f"mbconv_e{e}_k{k}"] = key
            layers.append(keys)
            fsize, cin = out, w
    lut[pnas_key("Conv_1", [7, 7, 320], [7, 7, 1280])] = val()
    lut[pnas_key("Logits", [7, 7, 1280], [1000])] = val()
    fixed = [k for k in lut if not k.startswith("expanded_conv") or "expand:1-" in k]

    def arch_keys(choices):
        return fixed + [keys[c] for keys, c in zip(layers, choices) if c != "skip"]
    return lut, arch_keys


@pytest.fixture
def write_yaml(tmp_path):
    def write(lut, name="lut.yaml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(lut, default_flow_style=False))
        return path
    return write


@pytest.fixture(scope="session")
def mobile_space():
    return get_space("proxyless-mobile")
