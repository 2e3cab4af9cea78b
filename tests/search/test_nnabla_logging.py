"""nnabla's INFO log lines do not leak into hwprof's output (issue 16, item 6)."""

import subprocess
import sys

SAVE_NNP = """
import nnabla as nn, nnabla.functions as F
from nnabla.utils.save import save
{before}
x = nn.Variable((1, 2))
y = F.relu(x)
save("{out}", {{"networks": [{{"name": "n", "batch_size": 1,
     "outputs": {{"y": y}}, "names": {{"x": x}}}}],
     "executors": [{{"name": "r", "network": "n", "data": ["x"], "output": ["y"]}}]}})
import logging
logging.getLogger("nnabla").warning("a real warning")
"""


def run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_importing_hwprof_search_silences_nnabla_info(tmp_path):
    p = run("import hwprof.search\n" + SAVE_NNP.format(before="", out=tmp_path / "a.nnp"))
    assert p.returncode == 0, p.stderr
    assert "[INFO]" not in p.stderr and "Saving" not in p.stderr
    assert "a real warning" in p.stderr


def test_the_cli_keeps_library_info_lines_out_of_its_output(tmp_path):
    p = run("from hwprof.cli import main\nmain(['spaces'])\n"
            + SAVE_NNP.format(before="import logging; logging.getLogger('paramiko').info('x')",
                              out=tmp_path / "b.nnp"))
    assert p.returncode == 0, p.stderr
    assert "INFO" not in p.stderr and "Initializing" not in p.stderr
    assert "a real warning" in p.stderr
