"""Data-quality suites (Great Expectations) over bronze tables, the gate, and the per-row rules
ingestion turns into quarantine reasons."""
