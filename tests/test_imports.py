"""Importing hwprof (and its CLI parser) stays light: no CUDA, paramiko, sklearn."""

import json
import subprocess
import sys

HEAVY = ("paramiko", "sklearn", "nnabla_ext.cuda", "torch", "nnabla", "pandas", "matplotlib")


def _modules_after(code):
    probe = code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(json.loads(p.stdout.strip().splitlines()[-1]))


def test_import_hwprof_is_light():
    mods = _modules_after("import hwprof, hwprof.errors")
    assert not [m for m in HEAVY if m in mods]


def test_building_the_cli_parser_imports_no_heavy_module():
    mods = _modules_after("from hwprof.cli import build_parser; build_parser()")
    assert not [m for m in HEAVY if m in mods], [m for m in HEAVY if m in mods]
