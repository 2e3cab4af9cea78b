"""Where a row came from: the provenance columns every table row carries.

One function fills them for measured rows (the build's recorder) and imported
rows (the LUT and CSV importers) alike, so the two kinds of rows cannot drift
apart in which columns they set or how they spell a timestamp.
"""

from __future__ import annotations

import time

import pandas as pd

from hwprof import __version__


def timestamp(seconds: float | None = None) -> pd.Timestamp:
    """A UTC timestamp at millisecond resolution (now when ``seconds`` is None)."""
    return pd.Timestamp(time.time() if seconds is None else seconds, unit="s", tz="UTC").floor("ms")


def provenance(*, fingerprint: str, env_key: str, device: str, runtime: str | None,
               runtime_version: str | None, source: str, measured_at: pd.Timestamp,
               source_key: str | None = None) -> dict:
    """The provenance columns of one row: device, environment, runtime, source, time, version."""
    return {"device_fingerprint": fingerprint, "env_key": env_key, "device": device,
            "runtime": runtime, "runtime_version": runtime_version, "source": source,
            "source_key": source_key, "measured_at": measured_at, "hwprof_version": __version__}
