"""Project datasets (catalog ``type: keras_lakehouse.datasets.<Name>``)."""

from keras_lakehouse.datasets.binary_files import BinaryFilesDataset
from keras_lakehouse.datasets.delta_table import (
    DeltaSnapshotDataset,
    DeltaTableDataset,
    delta_version_of,
)

__all__ = [
    "BinaryFilesDataset",
    "DeltaSnapshotDataset",
    "DeltaTableDataset",
    "delta_version_of",
]
