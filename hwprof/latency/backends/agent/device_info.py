"""What device this is and in what state: read on the device, stdlib only.

The *fingerprint* identifies the hardware (it is hashed into the table's
``device_fingerprint``); the *environment* says how it was set up (OS, Python,
runtime, threads); the *state* (frequency, governor, temperature) is read
before and after each op where the kernel exposes it.
"""

import glob
import hashlib
import json
import os
import platform

ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile",
             "neon", "asimd", "asimddp", "sve", "fphp", "asimdhp")


def _read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return default


def _cpuinfo():
    info = {}
    text = _read("/proc/cpuinfo", "") or ""
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info.setdefault(k.strip().lower(), v.strip())
    return info


def _physical_cores():
    cores = set()
    for path in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/topology/core_id"):
        pkg = _read(os.path.join(os.path.dirname(path), "physical_package_id"), "0")
        cores.add((pkg, _read(path)))
    return len(cores) or None


def _mem_total_mb():
    for line in (_read("/proc/meminfo", "") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return None


def fingerprint(extra=None):
    """Hardware identity; ``extra`` adds runtime-specific fields (GPU name...)."""
    cpu = _cpuinfo()
    flags = set((cpu.get("flags") or cpu.get("features") or "").split())
    model = (cpu.get("model name") or cpu.get("hardware") or cpu.get("cpu model")
             or platform.processor() or "unknown")
    board = _read("/proc/device-tree/model")
    fp = {
        "machine": platform.machine(),
        "cpu_model": model,
        "board_model": board.rstrip("\x00") if board else None,
        "cores_logical": os.cpu_count(),
        "cores_physical": _physical_cores(),
        "isa": sorted(f for f in ISA_FLAGS if f in flags),
        "mem_total_mb": _mem_total_mb(),
    }
    fp.update(extra or {})
    return fp


def fingerprint_id(fp):
    """Stable short id of a fingerprint; memory is rounded to whole GiB."""
    ident = dict(fp)
    if ident.get("mem_total_mb"):
        ident["mem_total_mb"] = int(round(ident["mem_total_mb"] / 1024.0)) * 1024
    blob = json.dumps(ident, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def state():
    """Frequency (MHz), governor and temperature (deg C) where readable."""
    gov = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    freq = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    temps = []
    for path in glob.glob("/sys/class/thermal/thermal_zone*/temp"):
        v = _read(path)
        if v and v.lstrip("-").isdigit():
            temps.append(int(v) / 1000.0)
    if freq is None:
        mhz = _cpuinfo().get("cpu mhz")
        freq = float(mhz) * 1000 if mhz else None
    return {"governor": gov, "freq_mhz": round(float(freq) / 1000.0, 1) if freq else None,
            "temp_c": max(temps) if temps else None}


def environment(runtime_name, runtime_version, extra=None):
    env = {
        "os": platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "runtime": runtime_name,
        "runtime_version": runtime_version,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
    }
    env.update(state())
    env.update(extra or {})
    return env
