"""Features and regressors that generalise a latency table to unmeasured ops."""
