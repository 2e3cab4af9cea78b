"""Search spaces, supernet, DARTS / ProxylessNAS learners, latency loss, export."""
