"""Checks of raw files shared by ingestion and inference: image and text parsing (``images``,
``texts``), the Spark jobs that run them (``spark_checks``), the routing of checked rows to the
accepted or the quarantine batch (``routing``), and every quarantine reason (``reasons``)."""
