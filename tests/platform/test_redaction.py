"""Credentials never reach a log line: URIs are redacted, everything else is left as it is."""

from __future__ import annotations

import logging

import pytest

from keras_lakehouse.platform.redaction import redact_uri
from keras_lakehouse.platform.tracking import configure_tracking


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://alice:s3cret@mlflow.example.com/", "https://***@mlflow.example.com/"),
        ("http://alice:s3cret@127.0.0.1:5000", "http://***@127.0.0.1:5000"),
        ("https://ghp_token123@github.com/org/repo", "https://***@github.com/org/repo"),
        (
            "postgresql+psycopg2://mlflow:p%40ss@db.internal:5432/mlflow",
            "postgresql+psycopg2://***@db.internal:5432/mlflow",
        ),
        ("mysql://root:p@ss@db:3306/mlflow", "mysql://***@db:3306/mlflow"),  # unescaped @
        ("s3a://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/path", "s3a://***@bucket/path"),
        ("jdbc:postgresql://u:pw@db:5432/lake", "jdbc:postgresql://***@db:5432/lake"),
        (
            "jdbc:sqlserver://db:1433;databaseName=lake;user=sa;password=Pa55;encrypt=true",
            "jdbc:sqlserver://db:1433;databaseName=lake;user=sa;password=***;encrypt=true",
        ),
        (
            "jdbc:mysql://db/lake?user=u&password=pw&useSSL=true",
            "jdbc:mysql://db/lake?user=u&password=***&useSSL=true",
        ),
        (  # Azure SAS: only the signature is a secret
            "https://acct.blob.core.windows.net/c/m.keras?sv=2022-11-02&sp=r&sig=AbC%2Bd%3D",
            "https://acct.blob.core.windows.net/c/m.keras?sv=2022-11-02&sp=r&sig=***",
        ),
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F2025&X-Amz-Signature=ab12",
            "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***",
        ),
        (
            "https://host/api?access_token=t0k&api_key=k3y&client_secret=s&page=2#top",
            "https://host/api?access_token=***&api_key=***&client_secret=***&page=2#top",
        ),
    ],
)
def test_credentials_are_masked(uri: str, expected: str) -> None:
    assert redact_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "databricks",
        "databricks-uc",
        "databricks://my-profile:my-prefix",  # a CLI profile and a secret-scope prefix
        "databricks-uc://my-profile:my-prefix",
        "sqlite:////home/me/project/mlflow.db",
        "sqlite:///mlflow.db",
        "file:///home/me/project/mlruns",
        "http://127.0.0.1:5000",
        "https://mlflow.example.com/path/to@sign?page=2&sort=name",  # @ outside the authority
        "abfss://container@account.dfs.core.windows.net/raw/images",  # container, no credential
        "wasbs://container@account.blob.core.windows.net/raw",
        "s3://bucket/raw/images",
        "dbfs:/Volumes/main/keras_lakehouse/raw",
        "/Volumes/main/keras_lakehouse/keras_lakehouse/raw/images",
        "data/02_intermediate/images_bronze",
        "main.keras_lakehouse.images_bronze",
        "jdbc:sqlserver://db:1433;databaseName=lake;user=sa",
        "",
    ],
)
def test_uris_without_credentials_are_unchanged(uri: str) -> None:
    assert redact_uri(uri) == uri


def test_the_tracking_log_line_carries_no_credential(
    monkeypatch, tmp_path, caplog, mlflow_store
) -> None:
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "https://alice:s3cret@registry.example.com")
    config = {"tracking_uri": "sqlite:///unused.db", "experiment_name": "redaction-tests"}
    logger = logging.getLogger("keras_lakehouse.platform.tracking")
    monkeypatch.setattr(logger, "handlers", [caplog.handler])  # once, whatever Kedro set
    monkeypatch.setattr(logger, "propagate", False)
    with caplog.at_level(logging.INFO, logger=logger.name):
        configure_tracking(config | {"artifact_location": tmp_path.as_uri()}, project_path=tmp_path)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("MLflow:")]
    assert "s3cret" not in line
    assert "registry https://***@registry.example.com" in line
    assert mlflow_store in line  # what carries no credential is logged whole
