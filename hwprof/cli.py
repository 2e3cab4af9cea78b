"""The ``hwprof`` command line: parse, validate, dispatch.

Each verb lives in its own module under :mod:`hwprof.commands` and declares
``VERB`` (one word, or two for a sub-verb such as ``table show``), ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Command modules import only
the standard library at import time; the work they dispatch to is imported in
``run``. A :class:`~hwprof.errors.UserError` becomes a one-line message and exit
code 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import textwrap

from hwprof import __version__
from hwprof.errors import UserError

EXAMPLES = """\
examples:
  hwprof check-device cpu
  hwprof spaces
  hwprof build-table --device cpu --space mbv2-cifar --out tables/cpu.parquet
  hwprof build-table --device cpu --ops my_ops.json --out my.parquet
  hwprof table show tables/cpu.parquet [--json]

run `hwprof VERB --help` for the options of one verb.
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's usage errors are user errors: exit 2
        self.print_usage(sys.stderr)
        self.exit(2, f"hwprof: error: {message}\n")


def _command_modules():
    import hwprof.commands as pkg
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{pkg.__name__}.{info.name}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hwprof", description="Hardware-aware NAS on measured latency tables: "
                     "measure ops on a device, keep them as Parquet tables, predict, search.",
                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hwprof {__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of errors (for bug reports)")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    groups: dict[str, argparse._SubParsersAction] = {}
    mods = sorted(_command_modules(), key=lambda m: m.VERB)
    for mod in mods:
        words = mod.VERB.split()
        if len(words) == 2 and words[0] not in groups:
            grp = verbs.add_parser(words[0], help=getattr(mod, "GROUP_HELP", f"{words[0]} tools"))
            groups[words[0]] = grp.add_subparsers(dest="subverb", metavar="SUBVERB",
                                                  parser_class=_Parser)
            grp.set_defaults(_group=grp)
    for mod in mods:
        words = mod.VERB.split()
        where = groups[words[0]] if len(words) == 2 else verbs
        doc = textwrap.dedent(mod.__doc__ or "").strip()
        p = where.add_parser(words[-1], help=mod.HELP, description=doc or mod.HELP,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM: stop like Ctrl-C, saving what was measured


def _configure_logging() -> None:
    """Warnings and errors of libraries on stderr, their INFO lines not.

    Configuring the root logger first also makes nnabla's own ``logging.basicConfig``
    (at INFO, on import) a no-op.
    """
    import logging
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(levelname)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    import signal
    _configure_logging()
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        (getattr(args, "_group", None) or parser).print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as e:
        if args.traceback:
            raise
        print(f"hwprof: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwprof: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
