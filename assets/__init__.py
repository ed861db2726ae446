"""Dagster assets of market-intel and the plain Python they are built from (feeds, storage)."""
