"""Quality-check logic: GX suites over raw tables and facts, and the findings they produce."""
