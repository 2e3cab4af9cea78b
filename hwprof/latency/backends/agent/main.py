"""Agent entry point and its JSON-lines conversation.

    stdin  {"type": "config", "runtime": "nnabla", "device": "cpu", "seed": 0, "protocol": {...}}
    stdout {"type": "hello", "ok": true, "fingerprint": {...}, "environment": {...}, ...}
    stdin  {"type": "measure", "id": "...", "plan": {...}}
    stdout {"type": "calibration", ...}            (at the start and every calib_every ops)
    stdout {"type": "result", "id": "...", "status": "ok", "median_ms": ..., ...}
    stdin  {"type": "exit"}  (or end of input)
    stdout {"type": "bye"}

``--check --runtime R --device D`` prints the hello object and exits 0 when the
device is usable, 3 when it is not. Anything the runtime prints is sent to
stderr so stdout carries only this conversation.
"""

import argparse
import importlib
import json
import os
import sys
import time
import traceback

from . import AGENT_VERSION, device_info, protocol

CALIBRATION_PLAN = {"kind": "conv2d", "input": [1, 32, 32, 32], "out_channels": 32,
                    "kernel": 3, "stride": 1, "padding": 1, "dilation": 1, "groups": 1,
                    "bias": False, "dtype": "float32", "layout": "NCHW"}
RUNTIMES = ("nnabla", "torch")


def _claim_stdout():
    """Keep fd 1 for our JSON lines; route everything else printed to stderr."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def _send(out, obj):
    out.write(json.dumps(obj, allow_nan=False, default=str) + "\n")
    out.flush()


def load_runtime(name):
    if name not in RUNTIMES:
        raise ValueError("unknown runtime %r; expected one of %s" % (name, ", ".join(RUNTIMES)))
    return importlib.import_module(".runtime_" + name, __package__)


def hello(runtime_name, device):
    mod = load_runtime(runtime_name)
    version, problems, fp_extra, env_extra = mod.probe(device)
    fp = device_info.fingerprint(fp_extra)
    return {"type": "hello", "ok": not problems, "agent_version": AGENT_VERSION,
            "runtime": runtime_name, "device": device, "fingerprint": fp,
            "fingerprint_id": device_info.fingerprint_id(fp),
            "environment": device_info.environment(runtime_name, version, env_extra),
            "problems": problems, "pid": os.getpid()}


class Session:
    def __init__(self, runtime, cfg):
        self.rt, self.cfg = runtime, cfg
        self.clock = getattr(runtime, "clock", time.perf_counter)  # CUDA events on torch
        self.calib = []
        self.done = 0

    def calibrate(self):
        fn = self.rt.build(CALIBRATION_PLAN)
        if not self.calib and self.cfg["settle_s"] > 0:
            # the first op of a fresh process on an idle machine runs slow (clock ramp-up,
            # first-touch memory): keep the device busy before the first timing
            end = time.monotonic() + self.cfg["settle_s"]
            while time.monotonic() < end:
                fn()
            self.rt.sync()
        st = protocol.measure(fn, dict(self.cfg, time_cap_s=min(0.5, self.cfg["time_cap_s"])),
                              sync=self.rt.sync, clock=self.clock)
        self.calib.append(st["median_ms"])
        return {"type": "calibration", "index": len(self.calib) - 1, "after_ops": self.done,
                "median_ms": st["median_ms"], "cv": st["cv"], "n_samples": st["n_samples"]}

    def measure(self, msg):
        before = device_info.state()
        res = {"type": "result", "id": msg.get("id")}
        t0 = time.time()
        try:
            fn = self.rt.build(msg["plan"])
            res.update(protocol.measure(fn, self.cfg, sync=self.rt.sync, clock=self.clock))
            res["status"], res["error"] = "ok", None
        except Exception as e:  # an op that fails is an error row, never a latency
            res = {"type": "result", "id": msg.get("id"), "status": "error",
                   "error": "%s: %s" % (type(e).__name__, e),
                   "traceback": traceback.format_exc(limit=3)}
        after = device_info.state()
        self.done += 1
        res.update({
            "started_at": t0, "governor": before["governor"], "freq_mhz": before["freq_mhz"],
            "temp_c_before": before["temp_c"], "temp_c_after": after["temp_c"],
            "calib_median_ms": self.calib[-1] if self.calib else None,
            "calib_ratio": self.calib[-1] / self.calib[0] if self.calib else None,
        })
        return res


def main(argv=None):
    ap = argparse.ArgumentParser(prog="hwprof-agent", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="print the device report and exit")
    ap.add_argument("--runtime", default="nnabla", choices=RUNTIMES)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    out = _claim_stdout()
    if args.check:
        h = hello(args.runtime, args.device)
        _send(out, h)
        return 0 if h["ok"] else 3

    line = sys.stdin.readline()
    if not line:
        return 0
    config = json.loads(line)
    try:
        cfg = protocol.settings(config.get("protocol"))
        h = hello(config.get("runtime", "nnabla"), config.get("device", "cpu"))
        h["protocol"] = cfg
    except Exception as e:
        _send(out, {"type": "hello", "ok": False, "problems": [str(e)]})
        return 3
    if not h["ok"]:
        _send(out, h)
        return 3
    rt = load_runtime(h["runtime"]).Runtime(h["device"], seed=config.get("seed", 0))
    floor = getattr(rt, "min_sample_ms", None)  # GPUs: blocks long enough to hide the sync
    if floor and "min_sample_ms" not in (config.get("protocol") or {}):
        cfg["min_sample_ms"] = max(cfg["min_sample_ms"], floor)  # recorded in hello's protocol
    sess = Session(rt, cfg)
    _send(out, h)
    _send(out, sess.calibrate())
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg.get("type") == "exit":
            break
        if msg.get("type") != "measure":
            continue
        if sess.done and cfg["calib_every"] and sess.done % cfg["calib_every"] == 0:
            _send(out, sess.calibrate())
        _send(out, sess.measure(msg))
    _send(out, {"type": "bye"})
    return 0
