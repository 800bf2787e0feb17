"""Monitoring: feature histograms and profiles computed by Spark, drift (Jensen–Shannon distance)
and live quality judged against thresholds, the two monitoring tables and the report."""
