"""Data quality over bronze tables: Great Expectations suites (``suites``), the per-row rules
ingestion turns into quarantine reasons (``row_rules``), the gate (``gate``), the HTML report
(``report``), and the check record they share (``checks``)."""
