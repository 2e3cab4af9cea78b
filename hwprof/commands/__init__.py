"""One module per CLI verb (see hwprof.cli)."""
