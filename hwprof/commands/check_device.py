"""Report whether a device can measure: its fingerprint, Python, runtime and
version, or exactly what is missing. Exit 0 when usable, 2 when not.

  hwprof check-device cpu
  hwprof check-device cuda:0 --json
  hwprof check-device ssh://pi@board --remote-python /usr/bin/python3
"""

VERB = "check-device"
HELP = "report a device's fingerprint and runtime, or what is missing"


def add_arguments(p):
    from hwprof.commands._common import add_backend_arguments
    p.add_argument("device", help="cpu, cuda[:N] or ssh://[user@]host[:port]")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend_arguments(p)


def run(args):
    from hwprof.commands._common import backend_options, print_json
    from hwprof.latency.backends.registry import get_backend

    backend = get_backend(args.device, backend_options(args))
    rep = backend.check()
    if args.json:
        print_json(rep)
    else:
        fp = rep.get("fingerprint") or {}
        rt = rep.get("runtime")
        print(f"device       {rep['device']}: {'usable' if rep['ok'] else 'NOT usable'}")
        if fp:
            from hwprof.latency.devices import hardware_name
            hw = hardware_name(fp)
            print(f"hardware     {hw} ({fp.get('machine')}, {fp.get('cores_logical')} cores, "
                  f"{fp.get('mem_total_mb')} MB, ISA {' '.join(fp.get('isa') or []) or '-'})")
            print(f"fingerprint  {rep.get('fingerprint_id')}")
        print(f"python       {rep.get('python') or '-'}")
        print(f"runtime      {(rt['name'] + ' ' + str(rt['version'])) if rt else 'missing'}")
        env = rep.get("environment") or {}
        extras = {k: env.get(k) for k in ("governor", "freq_mhz", "temp_c", "driver_version",
                                          "cuda_version", "cudnn_version")
                  if env.get(k) is not None}
        if extras:
            print("state        " + ", ".join(f"{k}={v}" for k, v in extras.items()))
        for prob in rep["problems"]:
            print(f"problem      {prob}")
    return 0 if rep["ok"] else 2
