"""What every stage runs on: the Spark session and its Delta jars, MLflow tracking, environment
settings, redaction of secrets in logs, and the software bill of materials."""
