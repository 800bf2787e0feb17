"""Project pipelines."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Stages that make up ``kedro run`` with no --pipeline, in data-flow order.
DEFAULT_STAGES = ("ingestion", "data_quality", "preprocessing", "training", "evaluation")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects; ``__default__`` chains the stages
        in ``DEFAULT_STAGES``.
    """
    pipelines = find_pipelines(raise_errors=True)
    # `kedro run --pipelines=x` loads only the pipelines it asks for.
    if all(name in pipelines for name in DEFAULT_STAGES):
        pipelines["__default__"] = sum((pipelines[name] for name in DEFAULT_STAGES), Pipeline([]))
    return pipelines
