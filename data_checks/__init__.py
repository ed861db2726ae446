"""Data-quality checks: Great Expectations suites, the Dagster asset checks that run them, and
the gate that keeps a report with an ERROR from being published."""
