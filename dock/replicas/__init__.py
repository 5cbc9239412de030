"""Replication transports: one module per kind of target (see dock.domain.replica)."""
