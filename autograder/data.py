"""Where MNIST comes from: the one module that finds, verifies, stages and loads it.

Staging (finding the four IDX files, checking their SHA-256, putting them in torchvision's
layout) lives in :mod:`autograder.student.data`, the part of the kit a student's notebook may
import; it is re-exported here. This module adds what only the grader needs: loading the splits
as tensors (:func:`load_mnist`) and saying where the data would come from.

The kit never downloads MNIST silently and never commits it. The grader stages with :func:`stage`,
from its :class:`~autograder.settings.Settings` (read nowhere else), looking in order at

1. the ``source`` argument (``cnn-kit stage-data --mnist DIR``, as typed),
2. the settings' data folder (``--mnist DIR`` or ``CNN_KIT_MNIST``),
3. the settings' cache (``CNN_KIT_CACHE``, default ``~/.cache/cnn-kit``), if already staged and valid,
4. torchvision's own download into the cache (fails offline; then :class:`MNISTNotFound`).

:func:`stage_mnist` and :func:`cache_root`, re-exported from the student package, are the notebook's:
they read ``$CNN_KIT_MNIST`` / ``$CNN_KIT_CACHE`` from the kernel's environment, its own edge.

MNIST: Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0.
"""

from __future__ import annotations

import functools
import math
import os
import pathlib
import struct

import torch

from autograder.settings import Settings
from autograder.student.data import (CACHE_VAR, FILES, MNIST_DIR_VAR, MNISTCorrupt, MNISTNotFound, _raw_dir,
                           cache_root, stage_from, stage_mnist)

__all__ = [
    "CACHE_VAR",
    "FILES",
    "MNIST_DIR_VAR",
    "MNISTCorrupt",
    "MNISTNotFound",
    "cache_root",
    "describe_source",
    "load_mnist",
    "stage",
    "stage_mnist",
]

# train -> (images file, labels file)
_SPLITS: dict[bool, tuple[str, str]] = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def stage(settings: Settings, source: str | os.PathLike[str] | None = None, *,
          download: bool = True) -> pathlib.Path:
    """Stage MNIST into ``settings.cache`` (see the module's docstring for where it looks); return that root."""
    return stage_from(source, settings.mnist, settings.cache, download=download)


def describe_source(settings: Settings, source: str | os.PathLike[str] | None = None) -> str:
    """One line saying which source :func:`stage` would use with `settings` (nothing is verified)."""
    if source is not None:
        return f"MNIST from {source} (--mnist)"
    if settings.mnist:
        return f"MNIST from {settings.mnist} (${MNIST_DIR_VAR})"
    raw = _raw_dir(settings.cache)
    if all((raw / name).is_file() for name in FILES):
        return f"MNIST from the kit cache {raw}"
    return f"MNIST: not in the kit cache {raw} and ${MNIST_DIR_VAR} not set; would try torchvision's download"


def _read_idx(path: pathlib.Path, ndim: int) -> torch.Tensor:
    """Parse an unsigned-byte IDX file (magic 0x0000 08 <ndim>, big-endian dims) into uint8."""
    try:
        size = path.stat().st_size
        data = bytearray(size)
        with open(path, "rb") as fh:
            got = fh.readinto(data)
    except FileNotFoundError:
        raise MNISTNotFound(f"{path} does not exist; run stage_mnist() first") from None
    header = 4 + 4 * ndim
    if got != size or size < header:
        raise MNISTCorrupt(f"{path}: too short for an IDX header ({size} bytes)")
    magic = int.from_bytes(data[:4], "big")
    if magic != 0x0800 + ndim:
        raise MNISTCorrupt(f"{path}: IDX magic {magic:#010x}, expected {0x0800 + ndim:#010x}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if size - header != math.prod(dims):
        raise MNISTCorrupt(
            f"{path}: IDX header says {dims} ({math.prod(dims)} bytes), file holds {size - header}"
        )
    return torch.frombuffer(data, dtype=torch.uint8, offset=header).view(dims)


@functools.lru_cache(maxsize=4)
def _load(root: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    images_name, labels_name = _SPLITS[train]
    raw = _raw_dir(root)
    images = _read_idx(raw / images_name, ndim=3)
    labels = _read_idx(raw / labels_name, ndim=1)
    if images.shape[1:] != (28, 28) or images.shape[0] != labels.shape[0]:
        raise MNISTCorrupt(
            f"{raw}: images {tuple(images.shape)} do not match labels {tuple(labels.shape)}"
        )
    if labels.numel() and int(labels.max()) > 9:
        raise MNISTCorrupt(f"{raw / labels_name}: labels outside 0..9")
    return images, labels.to(torch.int64)


def load_mnist(train: bool, root: str | os.PathLike[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``uint8 [N, 28, 28]`` and labels ``int64 [N]`` of the train or test split.

    ``root`` is a staged root (``<root>/MNIST/raw/``, what :func:`stage` returns). Results are memoised per
    (root, train) within the process, so the tensors are shared between callers: do not modify them in place.
    """
    return _load(str(pathlib.Path(root).expanduser().resolve()), bool(train))
