"""Architecture files: which candidate each searchable layer of a space uses.

    {"space": "mbv2-mini", "choices": ["mbconv_e3_k3", "skip", ...],
     "budget_ms": 2.0, "predicted_ms": 1.93, ...}

``space`` (a built-in name, or a space file's path with any ``:key=value``
overrides) and ``choices`` are required; an architecture of a space file also
keeps the file's definition (``space_definition``), used when the path no
longer resolves. Candidate names are as ``hwprof spaces --json`` lists them;
other keys are kept as they are.
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
    try:
        space = get_space(data["space"])
    except UserError as e:   # a space file that moved: the arch file keeps its definition
        if not isinstance(data.get("space_definition"), dict):
            raise UserError(f"{path}: {e}") from None
        space = Space(str(data["space"]), data["space_definition"])
    try:
        choices = space.check_choices(data["choices"])
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return space, choices, data


def save_arch(path: str | os.PathLike, space: Space, choices: list[str], **extra: Any) -> None:
    space.check_choices(choices)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    obj = {"space": space.ref, "choices": list(choices), **extra}
    if space.ref != space.name or "/" in space.ref:   # a space file: keep its definition too
        obj["space_definition"] = space.data
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)
