"""What NVIDIA GPU this is, read on the device with the standard library only.

Both runtimes use it so their rows describe a GPU the same way, whatever the
framework exposes: the CUDA driver library (``libcuda``, through ctypes) gives
name, compute capability and memory of the device as the CUDA runtime numbers
it (``CUDA_VISIBLE_DEVICES`` applies); ``/proc/driver/nvidia/version`` or
``nvidia-smi`` gives the driver version.
"""

import ctypes
import re
import subprocess

# a timed block on a GPU lasts at least this long, so the synchronisation around it and
# the first kernel's launch latency stay a fraction of a percent of the sample
CUDA_MIN_SAMPLE_MS = 5.0


def cuda_index(device, runtime):
    """The integer N of ``cuda`` / ``cuda:N``; ValueError for anything else."""
    head, _, idx = device.partition(":")
    if head != "cuda" or (idx and not idx.isdigit()):
        raise ValueError("%s runtime does not know device %r (expected cpu or cuda[:N])"
                         % (runtime, device))
    return int(idx or 0)

# CUdevice_attribute values (cuda.h)
_CC_MAJOR, _CC_MINOR, _SM_COUNT = 75, 76, 16


def parse_driver_version(text):
    """The driver version in ``/proc/driver/nvidia/version`` text, or None."""
    m = re.search(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+(?:\.\d+)+)", text or "")
    return m.group(1) if m else None


def driver_version():
    """NVIDIA driver version (e.g. ``550.54.14``) or None when there is no driver."""
    try:
        with open("/proc/driver/nvidia/version") as f:
            v = parse_driver_version(f.read())
        if v:
            return v
    except OSError:
        pass
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [s.strip() for s in out.splitlines() if s.strip()]
    return lines[0] if lines else None


def _load_libcuda():
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def device_properties(index):
    """(properties, problem) of CUDA device ``index`` as the driver reports it.

    ``properties`` holds ``gpu_name``, ``gpu_compute_capability`` ("8.0"),
    ``gpu_mem_mb``, ``gpu_sm_count`` and ``cuda_driver_api`` (the highest CUDA
    version the driver supports, e.g. "12.4"); ``problem`` is a sentence when
    the device cannot be read, else None.
    """
    lib = _load_libcuda()
    if lib is None:
        return {}, ("no NVIDIA driver on this machine (libcuda.so.1 cannot be loaded): "
                    "it has no usable GPU")
    rc = lib.cuInit(0)
    if rc != 0:
        return {}, "the CUDA driver failed to initialise (CUresult %d): no usable GPU" % rc
    count = ctypes.c_int(0)
    lib.cuDeviceGetCount(ctypes.byref(count))
    if index >= count.value:
        return {}, "CUDA device %d does not exist (the driver sees %d)" % (index, count.value)
    dev = ctypes.c_int(0)
    if lib.cuDeviceGet(ctypes.byref(dev), index) != 0:
        return {}, "CUDA device %d cannot be opened" % index
    name = ctypes.create_string_buffer(256)
    lib.cuDeviceGetName(name, 256, dev)

    def attr(code):
        v = ctypes.c_int(0)
        return v.value if lib.cuDeviceGetAttribute(ctypes.byref(v), code, dev) == 0 else None

    mem = ctypes.c_size_t(0)
    get_mem = getattr(lib, "cuDeviceTotalMem_v2", None) or lib.cuDeviceTotalMem
    get_mem(ctypes.byref(mem), dev)
    ver = ctypes.c_int(0)
    lib.cuDriverGetVersion(ctypes.byref(ver))
    major, minor = attr(_CC_MAJOR), attr(_CC_MINOR)
    return {
        "gpu_name": name.value.decode("utf-8", "replace"),
        "gpu_compute_capability": "%s.%s" % (major, minor) if major is not None else None,
        "gpu_mem_mb": mem.value // (1024 * 1024) if mem.value else None,
        "gpu_sm_count": attr(_SM_COUNT),
        "cuda_driver_api": "%d.%d" % (ver.value // 1000, ver.value % 1000 // 10) if ver.value else None,
    }, None


def describe(index):
    """(fingerprint extra, environment extra, problems) for CUDA device ``index``."""
    props, problem = device_properties(index)
    fp = {k: props.get(k) for k in ("gpu_name", "gpu_compute_capability", "gpu_mem_mb",
                                    "gpu_sm_count")}
    env = {"driver_version": driver_version(), "cuda_driver_api": props.get("cuda_driver_api")}
    return fp, env, [problem] if problem else []
