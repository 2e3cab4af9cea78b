"""Pack the agent package into one zip application, the bytes every backend runs.

The zip is deterministic (sorted entries, fixed timestamps), so its hash names
a version: local runs and remote boards cache it under that name and reuse it
while it is unchanged.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

AGENT_DIR = Path(__file__).with_name("agent")
PACKAGE = "hwprof_agent"
_MAIN = f"import sys\nfrom {PACKAGE}.main import main\nsys.exit(main())\n"


@lru_cache(maxsize=1)
def agent_bytes() -> bytes:
    """The zipapp: ``hwprof_agent/*.py`` plus a root ``__main__.py``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        files = sorted(p for p in AGENT_DIR.glob("*.py"))
        for p in files:
            info = zipfile.ZipInfo(f"{PACKAGE}/{p.name}", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            z.writestr(info, p.read_bytes(), zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo("__main__.py", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        z.writestr(info, _MAIN, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def agent_hash() -> str:
    return hashlib.sha256(agent_bytes()).hexdigest()[:16]


def agent_filename() -> str:
    return f"hwprof-agent-{agent_hash()}.pyz"


def local_agent_path() -> Path:
    """The zipapp written once into the user's cache directory."""
    base = Path(os.environ.get("HWPROF_CACHE") or
                Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hwprof")
    path = base / agent_filename()
    if not path.exists():
        base.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=base, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(agent_bytes())
        os.replace(tmp, path)
    return path
