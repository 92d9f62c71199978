"""EG3D-format datasets: read / write / check (folder or zip), a torch Dataset, and `make_dataset` for the worlds."""

from .check import CheckReport, check_dataset
from .dataset import (
    CAPTIONS_FILE,
    LABELS_FILE,
    DatasetError,
    DatasetStore,
    EG3DDataset,
    flip_label,
    image_name,
    read_captions,
    read_dataset,
    read_labels,
    write_dataset,
)

__all__ = [
    "CheckReport",
    "check_dataset",
    "CAPTIONS_FILE",
    "LABELS_FILE",
    "DatasetError",
    "DatasetStore",
    "EG3DDataset",
    "flip_label",
    "image_name",
    "read_captions",
    "read_dataset",
    "read_labels",
    "write_dataset",
]
