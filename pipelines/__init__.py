"""Dagster wiring for market-intel: definitions, resources, partitions, jobs and schedules."""
