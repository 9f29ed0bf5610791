"""Ops: what a person runs to start, check and repair the pipeline (round trip, later doctor and backfill)."""
