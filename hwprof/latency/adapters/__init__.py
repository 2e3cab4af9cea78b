"""Import and export adapters: other projects' latency tables to and from hwprof tables.

``proxylessnas`` reads and writes the ProxylessNAS / Once-for-All lookup-table
yaml; ``tabular`` reads generic CSV / JSON tables through a column map and
writes CSV / JSON. Both build rows through :mod:`.common`, which gives imported
data a device fingerprint and records source and unit in the file metadata.
The formats are described in ``tables/IMPORT.md``.
"""
