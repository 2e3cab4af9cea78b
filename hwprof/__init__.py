"""hwprof: hardware-aware neural architecture search on measured latency tables.

Importing this package is cheap: it imports no runtime (nnabla, CUDA), no
paramiko and no scikit-learn. Those are imported where they are used.
"""

__version__ = "0.1.0"
