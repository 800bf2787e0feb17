"""Checks of raw files shared by ingestion and inference: image and text parsing, and the
quarantine reasons a rejected file or row carries."""
