"""Architecture files: which candidate each searchable layer of a space uses.

    {"space": "mbv2-mini", "choices": ["mbconv_e3_k3", "skip", ...],
     "budget_ms": 2.0, "predicted_ms": 1.93, ...}

``space`` and ``choices`` are required (candidate names as ``hwprof spaces
--json`` lists them); other keys are kept as they are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hwprof.errors import UserError
from hwprof.latency.spaces import Space, get_space


def load_arch(path: str | os.PathLike) -> tuple[Space, list[str], dict[str, Any]]:
    """(space, choices, the whole JSON object), validated."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise UserError(f"cannot read architecture file {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; expected a JSON architecture file") from None
    if not isinstance(data, dict) or "space" not in data or "choices" not in data:
        raise UserError(f"{path}: an architecture file is a JSON object with at least "
                        f"'space' and 'choices'")
    space = get_space(data["space"])
    try:
        choices = space.check_choices(data["choices"])
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return space, choices, data


def save_arch(path: str | os.PathLike, space: Space, choices: list[str], **extra: Any) -> None:
    space.check_choices(choices)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {"space": space.name, "choices": list(choices), **extra}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)
