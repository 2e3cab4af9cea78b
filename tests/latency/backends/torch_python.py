"""Find Python interpreters that have PyTorch or ONNX Runtime, for those runtimes' tests.

The project's venv is Python 3.10 without torch; the agent is stdlib plus its
runtime, so the torch runtime runs under another interpreter (``--agent-python``).
Looked up in order: $HWPROF_TORCH_PYTHON, the checkout's .venv-torch (made by
`make test`: scripts/prepare-tests.sh), then this interpreter.
"""

import functools
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PROBE = "import json, torch; print(json.dumps([torch.__version__, torch.cuda.is_available()]))"


ORT_PROBE = "import json, onnx, onnxruntime; print(json.dumps([onnxruntime.__version__]))"


def _first_python(env_var, probe):
    """(interpreter, what ``probe`` printed) for the first of $env_var, the checkout's
    .venv-torch and this interpreter that runs ``probe``, or None."""
    import json
    candidates = [os.environ.get(env_var), str(ROOT / ".venv-torch" / "bin" / "python"),
                  sys.executable]
    for py in candidates:
        if not py or not os.path.exists(py):
            continue
        p = subprocess.run([py, "-c", probe], capture_output=True, text=True, timeout=120)
        if p.returncode == 0:
            return py, json.loads(p.stdout.strip().splitlines()[-1])
    return None


@functools.lru_cache(maxsize=None)
def torch_python():
    """(interpreter path, torch version, CUDA usable) or None when none has torch."""
    found = _first_python("HWPROF_TORCH_PYTHON", PROBE)
    return None if found is None else (found[0], *found[1])


@functools.lru_cache(maxsize=None)
def onnxruntime_python():
    """(interpreter path, onnxruntime version) or None when none has onnxruntime and onnx
    ($HWPROF_ORT_PYTHON, else .venv-torch, where scripts/prepare-tests.sh installs them)."""
    found = _first_python("HWPROF_ORT_PYTHON", ORT_PROBE)
    return None if found is None else (found[0], found[1][0])


def agent_env(**extra):
    """Environment for an agent subprocess: one intra-op thread on this shared box."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}
