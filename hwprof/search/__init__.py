"""Search spaces, supernet, DARTS / ProxylessNAS learners, latency loss, export."""

import logging

# nnabla logs at INFO on import and on every save ("Initializing CPU extension...",
# "Saving <_io.StringIO object ...>"); those lines are not hwprof's output. A level the
# user set before importing hwprof is kept.
if logging.getLogger("nnabla").level == logging.NOTSET:
    logging.getLogger("nnabla").setLevel(logging.WARNING)
