"""Search: the strategy interface and registry, one-shot and multi-trial strategies,
supernet, latency loss, derivation, closed loop, export."""

import logging

# nnabla logs at INFO on import and on every save ("Initializing CPU extension...",
# "Saving <_io.StringIO object ...>"); those lines are not hwprof's output. A level the
# user set before importing hwprof is kept.
if logging.getLogger("nnabla").level == logging.NOTSET:
    logging.getLogger("nnabla").setLevel(logging.WARNING)
