"""What the Unity Catalog model registry enforces and a local MLflow store does not.

The project's own code checks tag keys and names with these functions before it calls the
registry, and ``StandInRegistryStore`` — a local SQLite registry that refuses what Unity Catalog
refuses — lets the ``--env=databricks`` stand-in (tests/test_databricks_env.py) fail where a job
on a workspace would fail:

- registered model names are three-level ``catalog.schema.model``;
- tag keys (model versions and registered models) use letters, digits and underscores;
- every model version has a signature with inputs and outputs;
- ``search_model_versions`` takes a single ``name = '…'`` or ``run_id = '…'`` condition.

(Alias names need no check here: MLflow's client refuses bad ones for every store.)

Select the stand-in with the registry URI ``uc-standin:<path of a SQLite file>`` after calling
``register_standin_scheme()``.
"""

from __future__ import annotations

import re
from typing import Any

STANDIN_SCHEME = "uc-standin"
MAX_NAME_PART = 255
MAX_TAG_KEY = 255
MAX_TAG_VALUE = 1000  # Unity Catalog model and version tag values
_TAG_KEY = re.compile(r"[A-Za-z0-9_]+")
_NAME_PART = re.compile(r"[^\s./\\`\x00-\x1f]+")
_SEARCH = re.compile(r"\s*(name|run_id)\s*=\s*'[^']*'\s*")


class UnityCatalogRuleError(ValueError):
    """A request Unity Catalog would reject (INVALID_PARAMETER_VALUE)."""


def check_tag_key(key: str) -> None:
    """Raise unless ``key`` is a tag key Unity Catalog accepts."""
    if not (0 < len(key) <= MAX_TAG_KEY and _TAG_KEY.fullmatch(key)):
        raise UnityCatalogRuleError(
            "Unity Catalog tag keys use letters, digits and '_' only (at most "
            f"{MAX_TAG_KEY} characters). Received: {key!r}"
        )


def check_tag_value(key: str, value: str) -> None:
    """Raise when the value of tag ``key`` is longer than Unity Catalog stores."""
    if len(str(value)) > MAX_TAG_VALUE:
        raise UnityCatalogRuleError(
            f"Tag {key!r}: values hold at most {MAX_TAG_VALUE} characters. "
            f"Received: {len(str(value))}"
        )


def check_model_name(name: str) -> None:
    """Raise unless ``name`` is a three-level ``catalog.schema.model`` name."""
    parts = name.split(".")
    if len(parts) != 3 or not all(
        0 < len(part) <= MAX_NAME_PART and _NAME_PART.fullmatch(part) for part in parts
    ):
        raise UnityCatalogRuleError(
            "Unity Catalog registered models have three-level names catalog.schema.model, "
            f"each part without spaces, '.', '/' or control characters. Received: {name!r}"
        )


def check_signature(model: Any, source: str) -> None:
    """Raise unless the MLflow ``model`` (an ``mlflow.models.Model``) has inputs and outputs."""
    signature = model.signature
    if signature is None or signature.inputs is None or signature.outputs is None:
        raise UnityCatalogRuleError(
            "Unity Catalog registers only models with a signature holding inputs and outputs. "
            f"Received a model without one: {source}"
        )


def check_search_filter(filter_string: str | None) -> None:
    """Raise unless ``filter_string`` is one ``name = '…'`` or ``run_id = '…'`` condition."""
    if filter_string and not _SEARCH.fullmatch(filter_string):
        raise UnityCatalogRuleError(
            "Unity Catalog searches model versions by a single condition, name = '…' or "
            f"run_id = '…'. Received: {filter_string!r}"
        )


def register_standin_scheme() -> None:
    """Make ``uc-standin:<sqlite file>`` registry URIs resolve to ``StandInRegistryStore``."""
    from mlflow.tracking._model_registry.utils import _get_store_registry

    _get_store_registry().register(STANDIN_SCHEME, _build_standin)


def _build_standin(store_uri: str, tracking_uri: str | None = None) -> Any:
    """``uc-standin:/abs/path/registry.db`` → the stand-in store on that SQLite file."""
    return _standin_class()(f"sqlite:///{store_uri.split(':', 1)[1]}")


def _standin_class() -> type:
    from mlflow.models import Model
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    class StandInRegistryStore(SqlAlchemyStore):
        """A SQLite registry that refuses what Unity Catalog refuses."""

        def create_registered_model(self, name, *args, **kwargs):
            check_model_name(name)
            for tag in kwargs.get("tags") or (args[0] if args else None) or []:
                check_tag_key(tag.key)
            return super().create_registered_model(name, *args, **kwargs)

        def create_model_version(self, name, source, *args, **kwargs):
            check_model_name(name)
            check_signature(Model.load(source), source)
            for tag in kwargs.get("tags") or (args[1] if len(args) > 1 else None) or []:
                check_tag_key(tag.key)
            return super().create_model_version(name, source, *args, **kwargs)

        def set_registered_model_tag(self, name, tag):
            check_tag_key(tag.key)
            check_tag_value(tag.key, tag.value)
            return super().set_registered_model_tag(name, tag)

        def set_model_version_tag(self, name, version, tag):
            check_tag_key(tag.key)
            check_tag_value(tag.key, tag.value)
            return super().set_model_version_tag(name, version, tag)

        def search_model_versions(self, filter_string=None, *args, **kwargs):
            check_search_filter(filter_string)
            return super().search_model_versions(filter_string, *args, **kwargs)

    return StandInRegistryStore
