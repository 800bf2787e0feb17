"""Project datasets (catalog ``type: keras_lakehouse.datasets.<Name>``)."""

from keras_lakehouse.datasets.binary_files import BinaryFilesDataset
from keras_lakehouse.datasets.delta_snapshot import DeltaSnapshotDataset
from keras_lakehouse.datasets.delta_table import DeltaTableDataset
from keras_lakehouse.datasets.delta_versions import delta_version_of
from keras_lakehouse.datasets.file_stream import FileStreamDataset

__all__ = [
    "BinaryFilesDataset",
    "DeltaSnapshotDataset",
    "DeltaTableDataset",
    "FileStreamDataset",
    "delta_version_of",
]
