"""Agent entry point and its JSON-lines conversation.

    stdin  {"type": "config", "runtime": "nnabla", "device": "cpu", "seed": 0, "protocol": {...}}
    stdout {"type": "hello", "ok": true, "fingerprint": {...}, "environment": {...}, ...}
    stdin  {"type": "measure_group", "id": "g1", "ops": [{"id": "...", "plan": {...}}, ...],
            "level_ms": <the table's reference level, or null>, "seed": 0}
           (an op with "timed": false is built and warmed up in its place and has no
            result: an extra pass built like a sweep; with protocol setting sample_context
            it is sampled in the rounds too, as a spacer)
    stdout {"type": "progress", "id": "g1", "phase": "warmup" | "rounds", ...}   (many)
    stdout {"type": "group_result", "id": "g1", "timeline": [[s, ref_ms], ...],
            "results": [{"type": "result", "id": "...", "status": "ok", "samples_ms": [...],
                         "refs_ms": [...], "median_ms": ..., ...}, ...]}
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

from . import AGENT_VERSION, device_info, interleave, placement, protocol, reference_ops

RUNTIMES = ("nnabla", "torch", "onnxruntime")


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
    """One agent process: the runtime, the warmed-up reference op, groups measured in turn."""

    def __init__(self, runtime, cfg):
        self.rt, self.cfg = runtime, cfg
        self.plan = reference_ops.PLANS[cfg["reference"]]
        self.clock = getattr(runtime, "clock", time.perf_counter)  # CUDA events on torch
        self.ref = None
        # ops only: the reference is the yardstick, timed where it was built
        self.jitter = placement.HeapJitter.create(cfg.get("placement_jitter"))

    def _timer(self, fn, more=(), prime_ms=0.0, prime_calls=0, jitter=None):
        return interleave.Timer(fn, self.clock, self.rt.sync, more, prime_ms, prime_calls, jitter)

    def settle(self):
        """Build the reference op and keep the device busy with it for ``settle_s``.

        The first op of a fresh process on an idle machine runs slow (clock
        ramp-up, first-touch memory): nothing is timed before this.
        """
        self.ref = self._timer(reference_ops.build(self.rt, self.plan),
                               prime_calls=self.cfg["ref_prime_calls"])
        end = time.monotonic() + self.cfg["settle_s"]
        while time.monotonic() < end:
            self.ref.fn()
        self.rt.sync()
        self.ref.warm_up(self.cfg)

    def _prepare(self, op):
        rec = interleave.OpRecord(op.get("id"), None)
        try:
            fns = [self.rt.build(op["plan"]) for _ in range(self.cfg["instances"])]
            rec.timer = self._timer(fns[0], fns[1:], self.cfg["prime_ms"], jitter=self.jitter)
            first, rec.warmup_calls = rec.timer.warm_up(self.cfg)
            rec.first_call_ms = first * 1e3
        except Exception as e:  # an op that fails is an error row, never a latency
            rec.error = "%s: %s" % (type(e).__name__, e)
            rec.traceback = traceback.format_exc(limit=3)
        return rec

    def measure_group(self, msg, send):
        gid = msg.get("id")
        before = device_info.state()
        t_wall = time.time()
        # context: built and warmed up in place, never a result; sampled as spacers in the
        # rounds with protocol setting sample_context (interleave.run_group)
        records, context = [], []
        for op in msg["ops"]:
            (records if op.get("timed", True) else context).append(self._prepare(op))
            send({"type": "progress", "id": gid, "phase": "warmup", "op": op.get("id")})

        def progress(rounds, active):
            send({"type": "progress", "id": gid, "phase": "rounds", "round": rounds,
                  "active": active})
        timeline = interleave.run_group(records, self.ref, self.cfg, self.clock,
                                        level_ms=msg.get("level_ms"), seed=msg.get("seed", 0),
                                        progress=progress,
                                        spacers=context if self.cfg["sample_context"] else ())
        del context  # its buffers stayed where they were while the group was sampled
        after = device_info.state()
        state = {"started_at": t_wall, "governor": before["governor"],
                 "freq_mhz": before["freq_mhz"], "temp_c_before": before["temp_c"],
                 "temp_c_after": after["temp_c"]}
        return {"type": "group_result", "id": gid, "ref_block_size": self.ref.block,
                "timeline": [[round(t, 4), v] for t, v in timeline],
                "results": [self._result(rec, state) for rec in records]}

    def _result(self, rec, state):
        res = {"type": "result", "id": rec.id}
        res.update(state)
        if rec.error is None and not rec.samples_ms:
            rec.error = "no sample was taken"
        if rec.error is None:
            try:
                for v in rec.samples_ms:
                    protocol.check_positive(v)
            except protocol.ZeroTime as e:
                rec.error = "ZeroTime: %s" % e
        if rec.error is not None:
            res.update({"status": "error", "error": rec.error,
                        "traceback": getattr(rec, "traceback", None)})
            return res
        res.update(protocol.summarise([v / 1e3 for v in rec.samples_ms], self.cfg["target_ci"],
                                      self.cfg["unstable_cv"]))
        res.update({"status": "ok", "error": None, "samples_ms": rec.samples_ms,
                    "refs_ms": rec.refs_ms, "at_s": [round(t, 4) for t in rec.at_s],
                    "block_size": rec.timer.block, "first_call_ms": rec.first_call_ms,
                    "warmup_calls": rec.warmup_calls, "sampled_s": rec.sampled_s,
                    "stop_reason": rec.stop_reason})
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
    h["reference_plan"] = sess.plan
    _send(out, h)
    sess.settle()
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg.get("type") == "exit":
            break
        if msg.get("type") == "measure_group":
            _send(out, sess.measure_group(msg, lambda m: _send(out, m)))
    _send(out, {"type": "bye"})
    return 0
