"""Shared DAG wiring: Assets and defaults (no logic; that lives in include/twinlayer)."""
