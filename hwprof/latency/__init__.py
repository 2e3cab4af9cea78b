"""Core: op specs, measurement protocol, table model, build orchestration."""
