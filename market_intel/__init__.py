"""market-intel's domain: universe, calendars, feeds, storage, checks and reports, with no Dagster import."""
