"""Serving: the raw-input MLflow model (its self-contained code and entry file), integrity
digests, the registry gate, Spark batch scoring, the predict CLI, and the Unity Catalog stand-in."""
