"""`make test` prepares what the default suite needs (sshd, the torch venv) itself, and
.ci/run runs it rather than repeating it (issue 16, item 7)."""

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREPARE = ROOT / "scripts" / "prepare-tests.sh"


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\necho \"{name} $*\" >> \"$FAKE_LOG\"\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _path(tmp_path, bin_dir) -> str:
    """PATH of the fakes plus the few real tools the script uses (no real apt-get,
    python3.11 or pip can be reached)."""
    tools = tmp_path / "tools"
    tools.mkdir(exist_ok=True)
    for name in ("dirname", "rm", "mkdir", "chmod", "touch", "cp"):
        real = next(Path(d) / name for d in ("/usr/bin", "/bin") if (Path(d) / name).exists())
        if not (tools / name).exists():
            (tools / name).symlink_to(real)
    return f"{bin_dir}:{tools}"


def _run(tmp_path, bin_dir):
    env = {**os.environ, "PATH": _path(tmp_path, bin_dir), "FAKE_LOG": str(tmp_path / "log"),
           "SSHD": str(tmp_path / "sshd"), "TORCH_VENV": str(tmp_path / "venv")}
    p = subprocess.run(["/bin/bash", str(PREPARE)], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return p


def _prepare(tmp_path, bin_dir):
    _run(tmp_path, bin_dir)
    log = tmp_path / "log"
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return calls


def _fake_venv_tools(tmp_path) -> Path:
    """The python and pip a fake `python3.11 -m venv` puts in the venv: both log their
    calls; python's `-c "import onnx, onnxruntime"` fails until pip installed them."""
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "python").write_text('#!/bin/sh\necho "python $*" >> "$FAKE_LOG"\n'
                                '[ "$1" != -c ] || [ -f "$(dirname "$0")/ort" ]\n')
    (tpl / "pip").write_text('#!/bin/sh\necho "pip $*" >> "$FAKE_LOG"\n'
                             'case "$*" in *onnxruntime*) touch "$(dirname "$0")/ort";; esac\n')
    for f in tpl.iterdir():
        f.chmod(0o755)
    return tpl


def test_prepare_installs_sshd_and_the_torch_venv_once(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tpl = _fake_venv_tools(tmp_path)
    _fake(bin_dir, "id", "echo 0")
    _fake(bin_dir, "apt-get", f'case "$1" in install) touch {tmp_path}/sshd; '
                              f'chmod +x {tmp_path}/sshd;; esac')
    _fake(bin_dir, "python3.11", f'mkdir -p "$3/bin"; cp {tpl}/python {tpl}/pip "$3/bin/"')
    calls = _prepare(tmp_path, bin_dir)
    assert "apt-get update -qq" in calls
    assert "apt-get install -y -qq openssh-server" in calls
    assert f"python3.11 -m venv {tmp_path / 'venv'}" in calls
    assert "pip install -q torch==2.13.0 numpy" in calls
    assert "pip install -q onnxruntime==1.32.0 onnx==1.23.2" in calls
    # all there: nothing is installed again, only asked whether onnxruntime imports
    assert _prepare(tmp_path, bin_dir) == ["python -c import onnx, onnxruntime"]


def test_prepare_without_root_or_python311_says_what_will_skip(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake(bin_dir, "id", "echo 1000")
    _fake(bin_dir, "apt-get", "exit 1")
    p = _run(tmp_path, bin_dir)
    assert "install openssh-server" in p.stdout and "torch runtime tests will skip" in p.stdout
    assert "apt-get" not in (tmp_path / "log").read_text()  # never run without root


def test_make_test_runs_the_preparation_and_ci_does_not_repeat_it():
    p = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    prep = next(i for i, ln in enumerate(lines) if "scripts/prepare-tests.sh" in ln)
    assert prep < next(i for i, ln in enumerate(lines) if "pytest" in ln)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "apt-get" not in ci and "torch==" not in ci
