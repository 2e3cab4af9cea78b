#!/usr/bin/env bash
# Prepare what the default test suite needs beyond the project's venv, so that
# `make test` on a fresh machine runs every test except the GPU ones:
#   - openssh-server: the SSH backend's tests start a real sshd on loopback
#     (installed with apt-get when missing and running as root; otherwise a hint)
#   - .venv-torch: the torch and onnxruntime runtimes' tests run the agent under a Python
#     3.11 with the CPU wheel of PyTorch 2.13.0 and ONNX Runtime 1.32.0 (made when python3.11
#     exists)
# Idempotent: what is already there is left alone. Each step that cannot be done says
# which tests will skip; the script itself never fails the test run.
set -u
cd "$(dirname "$0")/.."
SSHD=${SSHD:-/usr/sbin/sshd}              # where the tests look for sshd
TORCH_VENV=${TORCH_VENV:-.venv-torch}     # where tests/latency/backends/torch_python.py looks

if [ ! -x "$SSHD" ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq openssh-server >/dev/null; } \
      || echo "note: could not install openssh-server (the real-sshd tests will skip)"
  else
    echo "note: no $SSHD: install openssh-server (e.g. sudo apt-get install" \
         "openssh-server) or the real-sshd tests will skip"
  fi
fi

if [ ! -x "$TORCH_VENV/bin/python" ]; then
  if command -v python3.11 >/dev/null 2>&1; then
    (python3.11 -m venv "$TORCH_VENV" && "$TORCH_VENV/bin/pip" install -q torch==2.13.0 numpy) \
      || { echo "note: no $TORCH_VENV (torch runtime tests will skip)"; rm -rf "$TORCH_VENV"; }
  else
    echo "note: no python3.11: the torch runtime tests will skip (or set HWPROF_TORCH_PYTHON)"
  fi
fi

if [ -x "$TORCH_VENV/bin/python" ] && ! "$TORCH_VENV/bin/python" -c "import onnx, onnxruntime" 2>/dev/null; then
  "$TORCH_VENV/bin/pip" install -q onnxruntime==1.32.0 onnx==1.23.2 \
    || echo "note: no onnxruntime in $TORCH_VENV (the onnxruntime runtime tests will skip)"
fi
exit 0
