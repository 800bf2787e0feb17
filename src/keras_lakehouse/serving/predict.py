"""Score one image or one text with the champion model, from a terminal.

    python -m keras_lakehouse.serving.predict data/01_raw/inference/images/new_00001.png
    python -m keras_lakehouse.serving.predict "The striker scored twice before half time."

An argument that names an existing file is an image (the CNN); one that looks like an image path
but does not exist is an error; anything else is a text (the LSTM). ``--model`` forces the choice.
The project's configuration (``conf/``, ``--env``) says where the registry is and which names and
alias to load. Exit status: 0 scored, 2 bad input (the message says why), 3 no model to load.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
BAD_INPUT, NO_MODEL = 2, 3


class InputError(ValueError):
    """The item cannot be scored; the message says why."""


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status.

    Bad input and a missing model end as one line on stderr (``error: ...``) and status 2 or 3,
    whatever the item holds: never a traceback.
    """
    args = _parser().parse_args(argv)
    project = args.project.resolve()

    def fail(error: Exception, status: int) -> int:
        # One line: line breaks, control characters and argv bytes that are not UTF-8 (lone
        # surrogates) in the message, which may quote the item, are printed as escapes.
        message = "".join(
            char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
            for char in str(error)
        )
        print(f"error: {message}", file=sys.stderr)
        return status

    from kedro.config import MissingConfigException

    try:
        config = _load_config(project, args.env)
        model_key = args.model or _guess_model(args.item)
        frame = _input_frame(args.item, model_key, config["parameters"])
    except (InputError, MissingConfigException) as error:  # e.g. --env names no conf folder
        return fail(error, BAD_INPUT)
    try:
        name, version, model = _load_champion(project, config, model_key)
    except LookupError as error:
        return fail(error, NO_MODEL)
    try:
        output = model.predict(frame)
    except ValueError as error:  # the model's own input checks
        return fail(error, BAD_INPUT)
    row = output.iloc[0]
    alias = config["parameters"]["serving"]["alias"]
    print(f"{row['label']}\t{row['probability']:.4f}\t({name} v{version}, {alias})")
    if args.all:
        for column in output.columns:
            if column.startswith("prob_"):
                print(f"  {column.removeprefix('prob_')}\t{row[column]:.4f}")
    return 0


def _guess_model(item: str) -> str:
    path = Path(item)
    try:
        is_file = path.is_file()
    except OSError:  # e.g. a long text: "File name too long"; it is not a file either way
        is_file = False
    if is_file:
        return "cnn"
    if path.suffix.lower() in IMAGE_SUFFIXES and len(item) < 4096 and "\n" not in item:
        raise InputError(f"{item}: no such file (an image path must name an existing file)")
    return "lstm"


def _input_frame(item: str, model_key: str, parameters: dict[str, Any]) -> Any:
    """The one-row raw input of the model, after the ingestion checks."""
    import pandas as pd

    from keras_lakehouse.ingest.texts import has_surrogates
    from keras_lakehouse.serving.mlflow_model import IMAGE_COLUMN, TEXT_COLUMN

    if model_key == "lstm":
        if has_surrogates(item):  # argv bytes that are not UTF-8, as ingestion's not_utf8
            raise InputError("the text has bytes that are not UTF-8 (not_utf8)")
        if not item.strip():
            raise InputError("the text is empty")
        limit = parameters["ingestion"]["texts"]["max_text_chars"]
        if len(item) > limit:
            raise InputError(f"the text has {len(item)} characters, above the cap of {limit}")
        return pd.DataFrame({TEXT_COLUMN: [item]})
    from keras_lakehouse.ingest.images import inspect_image

    path = Path(item)
    settings = parameters["ingestion"]["images"]
    try:
        if path.exists() and not path.is_file():  # a folder, a pipe, a device: may never end
            content = None
        else:
            with path.open("rb") as file:
                content = file.read(settings["max_bytes"] + 1)  # enough to tell it is too large
    except (OSError, ValueError) as error:  # ValueError: a NUL character in the path
        reason = (error.strerror if isinstance(error, OSError) else None) or error
        raise InputError(f"{item}: cannot read the file ({reason})") from error
    if content is None:
        raise InputError(f"{item}: not a regular file (a folder, pipe or device is never read)")
    if not content:
        raise InputError(f"{item}: empty_file (file has 0 bytes)")
    if len(content) > settings["max_bytes"]:
        raise InputError(f"{item}: too_large (above the cap of {settings['max_bytes']} bytes)")
    check = inspect_image(
        content,
        allowed_formats=frozenset(settings["allowed_formats"]),
        max_pixels=settings["max_pixels"],
    )
    if check.reason:
        raise InputError(f"{item}: {check.reason} ({check.detail})")
    return pd.DataFrame({IMAGE_COLUMN: [content]})


def _load_config(project: Path, env: str | None) -> dict[str, Any]:
    # Kedro's own use of a deprecated OmegaConf call: noise for a person at a terminal.
    warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated")
    from kedro.config import OmegaConfigLoader

    from keras_lakehouse.settings import CONFIG_LOADER_ARGS

    conf = project / "conf"
    if not (conf / "base").is_dir():
        raise InputError(
            f"{project} is not a Keras Lakehouse project (no conf/base): use --project"
        )
    loader = OmegaConfigLoader(conf_source=str(conf), env=env, **CONFIG_LOADER_ARGS)
    return {"parameters": loader["parameters"], "mlflow": loader["mlflow"]}


def _load_champion(project: Path, config: dict[str, Any], model_key: str) -> tuple[str, str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import mlflow
    from mlflow.exceptions import MlflowException

    from keras_lakehouse.platform.tracking import use_store

    use_store(config["mlflow"], project_path=project)
    name = config["parameters"]["evaluation"][model_key]["registered_name"]
    alias = config["parameters"]["serving"]["alias"]
    try:
        version = mlflow.MlflowClient().get_model_version_by_alias(name, alias).version
    except MlflowException as error:
        raise LookupError(
            f"no version of {name!r} has the alias {alias!r} in {mlflow.get_registry_uri()}: "
            "run `make run` (training and evaluation) first"
        ) from error
    from keras_lakehouse.serving.integrity import ModelIntegrityError
    from keras_lakehouse.serving.scoring import fetch_version

    cache = Path(config["parameters"]["serving"]["model_cache_dir"])
    try:
        model = fetch_version(name, str(version), cache if cache.is_absolute() else project / cache)
        return name, str(version), model.load()  # files and code verified (integrity)
    except ModelIntegrityError as error:
        raise LookupError(str(error)) from error
    except MlflowException as error:  # e.g. the version was deleted after the alias resolved
        raise LookupError(f"{name} v{version} cannot be loaded: {error.message}") from error


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keras_lakehouse.serving.predict",
        description="Print the champion model's label and probability for one image or text.",
    )
    parser.add_argument("item", metavar="PATH_OR_TEXT", help="an image file, or a text")
    parser.add_argument("--model", choices=["cnn", "lstm"], help="force the model (default: guess)")
    parser.add_argument("--env", default=None, help="Kedro config environment (default: local)")
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="project folder")
    parser.add_argument("--all", action="store_true", help="also print every class probability")
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
