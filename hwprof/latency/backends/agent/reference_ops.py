"""The reference op timed beside every op sample, so the machine's state at each is known.

Two references, by the protocol setting ``reference``:

- ``"basket"`` (the default since agent 12): three small blocks of different
  kinds, an MBConv (1x24x12x12, expand 3, kernel 5), a dense 3x3 conv + BN +
  ReLU6 (1x32x16x16) and a depthwise 3x3 conv + BN + ReLU6 (1x96x16x16), run
  one after the other as one reference call (about 1.1 ms on the development
  VM). Any single op's ratio to the others wanders by a per cent or more over
  tens of minutes; three unlike ones wander less together.
- ``"mbconv"`` (agents 2-11): one MBConv block (1x24x16x16, expand 3, kernel 5,
  residual), about 0.8 ms. Tables measured against it keep being measured
  against it (the host asks for the reference their plan names).

Why the basket (``protocol.DEFAULTS`` says the figures): two builds of a space
13 minutes apart had every op of mbv2-mini 2.9 % slower against the MBConv in
the second (bn, conv2d, fc and MBConvs alike); the reference itself had moved.

Standard library only (the runtime builds the members).
"""

_F32 = {"dtype": "float32", "layout": "NCHW"}


def _conv(c_in, c_out, k, hw, depthwise=False):
    extra = {"multiplier": 1} if depthwise else {"groups": 1, "out_channels": c_out}
    return dict(_F32, kind="dwconv2d" if depthwise else "conv2d", input=[1, c_in, hw, hw],
                kernel=k, padding=k // 2, stride=1, bias=False, dilation=1, **extra)


def _unary(kind, c, hw):
    return dict(_F32, kind=kind, input=[1, c, hw, hw])


def _mbconv(c, expand, k, hw):
    """A residual MBConv block (1x1 expand, kxk depthwise, 1x1 project; BN, ReLU6)."""
    m = c * expand
    return {"kind": "chain", "input": [1, c, hw, hw], "residual": True, "ops": [
        _conv(c, m, 1, hw), _unary("bn", m, hw), _unary("relu6", m, hw),
        _conv(m, m, k, hw, depthwise=True), _unary("bn", m, hw), _unary("relu6", m, hw),
        _conv(m, c, 1, hw), _unary("bn", c, hw)]}


def _conv_bn_relu6(c, k, hw, depthwise=False):
    return {"kind": "chain", "input": [1, c, hw, hw], "ops": [
        _conv(c, c, k, hw, depthwise), _unary("bn", c, hw), _unary("relu6", c, hw)]}


PLANS = {
    "basket": {"kind": "basket", "members": [
        _mbconv(24, 3, 5, 12), _conv_bn_relu6(32, 3, 16), _conv_bn_relu6(96, 3, 16, True)]},
    "mbconv": _mbconv(24, 3, 5, 16),
}


def build(runtime, plan):
    """A function that runs ``plan`` once: a basket runs each of its members in turn."""
    if plan.get("kind") != "basket":
        return runtime.build(plan)
    fns = [runtime.build(m) for m in plan["members"]]

    def run():
        for fn in fns:
            fn()
    return run


def name_of(plan):
    """The name of the reference ``plan`` is (``PLANS``), or None for any other plan."""
    return next((name for name, p in PLANS.items() if p == plan), None)
