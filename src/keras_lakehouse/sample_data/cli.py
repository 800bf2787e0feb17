"""``python -m keras_lakehouse.sample_data``: the command line of ``generate``.

Usage: ``python -m keras_lakehouse.sample_data [--output data/01_raw] [--scale N] [--seed 42]
[--images-per-label N] [--texts-per-label N] [--if-empty]``, or, to replace only the inference
batch: ``python -m keras_lakehouse.sample_data --inference-only [--shifted] [--seed N]``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from keras_lakehouse.sample_data.generator import (
    check_images_per_label,
    check_scale,
    check_texts_per_label,
    generate,
    generate_inference,
    has_files,
)
from keras_lakehouse.sample_data.images import IMAGES_PER_LABEL
from keras_lakehouse.sample_data.layout import DEFAULT_OUTPUT, DEFAULT_SCALE, DEFAULT_SEED
from keras_lakehouse.sample_data.texts import TEXTS_PER_LABEL

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        The exit status (0 on success; argparse exits with 2 on a bad argument).
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = _parser().parse_args(argv)
    if args.inference_only:
        generate_inference(args.output, seed=args.seed, shifted=args.shifted)
        return 0
    if args.shifted:
        logger.error("--shifted applies to the inference batch only: add --inference-only.")
        return 2
    if args.if_empty and has_files(args.output):
        logger.info("%s already holds files: skipping sample data generation.", args.output)
        return 0
    generate(
        args.output,
        scale=args.scale,
        seed=args.seed,
        images_per_label=args.images_per_label,
        texts_per_label=args.texts_per_label,
    )
    return 0


def _integer_argument(check: Callable[[object], None]) -> Callable[[str], int]:
    """An argparse ``type`` that parses an integer and runs ``check`` on it."""

    def parse(value: str) -> int:
        try:
            number: object = int(value)
        except ValueError:
            number = value  # not an integer: ``check`` refuses it, quoting what was received
        try:
            check(number)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from error
        return int(value)

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keras_lakehouse.sample_data",
        description="Generate the deterministic synthetic raw dataset (images and texts).",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="raw data folder")
    parser.add_argument(
        "--scale",
        type=_integer_argument(check_scale),
        default=DEFAULT_SCALE,
        help="multiplies the default numbers of good records",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    parser.add_argument(
        "--images-per-label",
        type=_integer_argument(check_images_per_label),
        default=None,
        help=f"good images per label (default: {IMAGES_PER_LABEL} x scale)",
    )
    parser.add_argument(
        "--texts-per-label",
        type=_integer_argument(check_texts_per_label),
        default=None,
        help=f"good reviews.csv rows per label (default: {TEXTS_PER_LABEL} x scale)",
    )
    parser.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing when the output folder already holds files (.gitkeep aside)",
    )
    parser.add_argument(
        "--inference-only",
        action="store_true",
        help="replace only the inference batch (output/inference); labelled data stays",
    )
    parser.add_argument(
        "--shifted",
        action="store_true",
        help="with --inference-only: a batch from another distribution, for monitoring to flag "
        "(darker, turned images; texts of unknown words)",
    )
    return parser
