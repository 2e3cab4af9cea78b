"""Profile op plans with NNablaNAS's latency Profiler (run in an nnabla-nas environment).

Called by bench_foundation.py with the interpreter of a separate environment
that has `nnabla-nas==0.15.0` (and `tensorboard<2.18`). The graphs are built by
hwprof's own agent runtime (imported from the agent zipapp, which needs only
nnabla), so both tools time exactly the same nnabla graphs.

    python nnablanas_profile.py AGENT.pyz PLANS.json REPEATS  ->  JSON on stdout
"""

import json
import sys
import time


def main():
    agent, plans_path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.path.insert(0, agent)
    import nnabla as nn
    from hwprof_agent.runtime_nnabla import Runtime
    from nnabla_nas.utils.estimator.latency import Profiler

    plans = json.load(open(plans_path))
    runs = []
    for _ in range(repeats):
        lat, t0 = {}, time.perf_counter()
        for sig, plan in plans.items():
            # what LatencyEstimator.predict does: profile, and 0 when it fails
            try:
                rt = Runtime("cpu", seed=0)
                y = rt._op(plan, rt._rand(plan["input"]))
                prof = Profiler(y, device_id="0", ext_name="cpu", n_run=100)
                prof.run()
                lat[sig] = float(prof.result["forward_all"])
            except Exception as e:  # noqa: BLE001 - mirror NNablaNAS: latency 0
                print(f"nnabla-nas failed on {sig}: {e}", file=sys.stderr)
                lat[sig] = 0.0
            nn.clear_parameters()
        runs.append({"wall_s": time.perf_counter() - t0, "latency_ms": lat})
    json.dump({"runs": runs, "nnabla_nas": __import__("nnabla_nas").__version__}, sys.stdout)


if __name__ == "__main__":
    main()
