"""Argument groups and output helpers shared by several verbs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from hwprof.latency.backends.agent.main import RUNTIMES


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str, allow_nan=False)
    sys.stdout.write("\n")


def add_backend_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("device options")
    g.add_argument("--runtime", default="nnabla", choices=RUNTIMES,
                   help="framework the agent builds ops with: nnabla, torch (PyTorch) or "
                        "onnxruntime (ONNX Runtime, CPU; the agent's interpreter needs "
                        "onnxruntime, onnx and numpy) (default: nnabla)")
    g.add_argument("--op-timeout", type=float, default=120.0, metavar="S",
                   help="seconds without an answer before an op counts as hung (default: 120)")
    g.add_argument("--agent-python", default=None, metavar="PATH",
                   help="Python interpreter that runs the agent for cpu/cuda devices, e.g. a "
                        "virtual environment with torch (default: the one running hwprof)")
    g.add_argument("--ssh-key", metavar="FILE", help="private key for ssh:// devices")
    g.add_argument("--remote-python", default=None, metavar="PATH",
                   help="Python interpreter on ssh:// boards (default: python3)")
    g.add_argument("--accept-new-host-key", action="store_true",
                   help="add an unknown ssh host key to known_hosts (like OpenSSH "
                        "StrictHostKeyChecking=accept-new); changed keys are still refused")


def add_protocol_arguments(p: argparse.ArgumentParser, what: str = "op",
                           min_span: float | None = None) -> None:
    """The measurement-protocol overrides; defaults shown are the agent's own (``min_span``:
    the command's own default span instead)."""
    from hwprof.latency.backends.agent.protocol import (
        DEFAULTS,
        NETWORK_MIN_SPAN_S,
        NETWORK_SAMPLING_S,
        QUICK,
        REFERENCES,
    )
    g = p.add_argument_group(
        "measurement protocol",
        f"every {what} is sampled in rounds, each sample beside a sample of the reference op; "
        f"its latency is carried to the table's reference level (see README, 'How an op is "
        f"measured')")
    cap = (f"{DEFAULTS['time_cap_s']:g}" if what == "op" else
           f"{NETWORK_SAMPLING_S:g} shared by the networks of one call, at least 5 each")
    g.add_argument("--time-cap", type=float, metavar="S",
                   help=f"max seconds of sampling per {what} (default: {cap})")
    g.add_argument("--target-ci", type=float, metavar="FRAC",
                   help=f"{'an' if what[0] in 'aeiou' else 'a'} {what} is done when the 95%% CI "
                        f"of its latency is within +-FRAC "
                        f"(default: {DEFAULTS['target_ci']:g})")
    span = min_span or (DEFAULTS["min_span_s"] if what == "op" else NETWORK_MIN_SPAN_S)
    g.add_argument("--min-span", type=float, metavar="S", default=min_span,
                   help=f"... and its samples span at least S seconds, so slow drifts of the "
                        f"machine average out (default: {span:g})")
    g.add_argument("--min-samples", type=int, metavar="N",
                   help=f"minimum samples per {what} (default: {DEFAULTS['min_samples']})")
    g.add_argument("--instances", type=int, metavar="N",
                   help=f"build every {what} N times, with buffers of its own, and sample the "
                        f"instances in turn, so the latency averages where buffers landed "
                        f"(default: {DEFAULTS['instances']})")
    g.add_argument("--reference", choices=REFERENCES,
                   help="the reference op every sample is timed beside: basket (three unlike "
                        "small blocks, agent 12 on) or mbconv (the one MBConv block of agents up "
                        "to 11) (default: the one the table was measured against, else basket)")
    if what == "op":
        g.add_argument("--quick", action="store_true",
                       help="a first look with a shorter protocol (" + ", ".join(
                           f"{k}={v:g}" for k, v in QUICK.items() if v is not None) + "; the options above "
                           "still override it): mbv2-cifar in about 4 s instead of 1.5-4 minutes on a "
                           "2-vCPU VM, less repeatable over time (README, 'Measured figures')")


def protocol_of(args: argparse.Namespace) -> dict:
    """Protocol overrides given on the command line (see add_protocol_arguments)."""
    from hwprof.latency.backends.agent.protocol import QUICK
    base = dict(QUICK) if getattr(args, "quick", False) else {}
    n = getattr(args, "instances", None)
    if n is not None and n < 1:
        from hwprof.errors import UserError
        raise UserError(f"--instances must be at least 1, got {n}")
    return {**base, **{k: v for k, v in (("time_cap_s", args.time_cap),
                                         ("target_ci", args.target_ci),
                                         ("min_span_s", args.min_span),
                                         ("min_samples", args.min_samples),
                                         ("instances", n),
                                         ("reference", getattr(args, "reference", None)))
                  if v is not None}}


def backend_options(args: argparse.Namespace):
    from hwprof.latency.backends.base import BackendOptions
    extra = {"ssh_key": args.ssh_key, "remote_python": args.remote_python,
             "accept_new_host_key": args.accept_new_host_key, "agent_python": args.agent_python}
    return BackendOptions(runtime=args.runtime, op_timeout=args.op_timeout, extra=extra)


def duration_ms(text: str) -> float:
    """Parse '20ms', '500us', '0.02s' (or a bare number of ms) into milliseconds."""
    return _scaled(text, (("ms", 1.0), ("us", 1e-3), ("µs", 1e-3), ("s", 1e3)), "a duration",
                   "20ms, 500us or 0.02s")


def add_force_argument(p: argparse.ArgumentParser, flag: str = "--out") -> None:
    p.add_argument("--force", action="store_true", help=f"replace {flag} if it exists")


def check_output(out, inputs=(), *, force: bool, flag: str = "--out",
                 dir_ok: bool = False) -> None:
    """Refuse to write ``out`` over one of ``inputs`` (always) or over an existing file
    (unless ``force``). ``dir_ok``: an existing directory is a store to add to (fleets)."""
    from pathlib import Path

    from hwprof.errors import UserError
    out = Path(out)
    for src in inputs:
        if _overlaps(out, Path(src)):
            raise UserError(f"{flag} {out} is also an input ({src}); write to another file")
    if out.exists() and not force and not (dir_ok and out.is_dir()):
        raise UserError(f"{out} exists; pass --force to replace it, or choose another {flag}")


def _overlaps(a, b) -> bool:
    """``a`` and ``b`` are one file (links included), or one lies inside the other."""
    import os
    try:
        if a.exists() and b.exists() and os.path.samefile(a, b):
            return True
    except OSError:
        pass
    ra, rb = a.resolve(), b.resolve()
    return ra == rb or ra in rb.parents or rb in ra.parents


def _scaled(text: str, units: tuple[tuple[str, float], ...], what: str, example: str) -> float:
    from hwprof.errors import UserError
    t = text.strip()
    for suffix, scale in units:
        if suffix and t.lower().endswith(suffix.lower()):
            t, mult = t[: -len(suffix)].strip(), scale
            break
    else:
        mult = 1.0
    try:
        v = float(t) * mult
    except ValueError:
        raise UserError(f"cannot read {text!r} as {what}; write e.g. {example}") from None
    if not v > 0:
        raise UserError(f"{what} must be positive, got {text!r}")
    return v


def count(text: str) -> float:
    """Parse a parameter count: '2.5M', '800k', '1G' or a bare number."""
    return _scaled(text, (("k", 1e3), ("m", 1e6), ("g", 1e9)), "a parameter count",
                   "2.5M, 800k or 120000")


def size_bytes(text: str) -> float:
    """Parse a memory size: '4MB', '512kB', '1GiB' (kB/MB/GB are powers of 1000, KiB/MiB/GiB
    of 1024) or a bare number of bytes."""
    units = (("KiB", 2.0 ** 10), ("MiB", 2.0 ** 20), ("GiB", 2.0 ** 30), ("kB", 1e3),
             ("MB", 1e6), ("GB", 1e9), ("B", 1.0))
    return _scaled(text, units, "a memory size", "4MB, 512kB or 1GiB")


def print_level_note(model) -> None:
    """Say on stderr when a command's table and predictor sit at different reference levels
    (:func:`hwprof.latency.levelmerge.level_note`): their answers differ by a common factor."""
    if getattr(model, "level_note", None):
        print(f"hwprof: note: {model.level_note}", file=sys.stderr)
