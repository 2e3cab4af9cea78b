import os
import sys
from pathlib import Path

import pytest

# keep the agent zipapp cache inside the test session, not in ~/.cache
os.environ.setdefault("HWPROF_CACHE", str(Path(__file__).resolve().parent.parent / ".pytest_cache"
                                          / "hwprof-agent"))

FAST_PROTOCOL = {"time_cap_s": 0.2, "min_samples": 5, "warmup_s": 0.01, "min_span_s": 0.0}


@pytest.fixture
def hwprof_cli():
    """argv prefix that runs this checkout's CLI with the test interpreter."""
    return [sys.executable, "-m", "hwprof"]
