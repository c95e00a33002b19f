"""Where MNIST comes from: the one module that finds, verifies, stages and loads it.

Staging (finding the four IDX files, checking their SHA-256, putting them in torchvision's
layout) lives in :mod:`autograder.student.data`, the part of the kit a student's notebook may
import; it is re-exported here. This module adds what only the grader needs: loading the splits
as tensors (:func:`load_mnist`) and saying where the data would come from.

The kit never downloads MNIST silently and never commits it. It looks, in order, at

1. the ``source`` argument of :func:`stage_mnist` (the CLI's ``--mnist DIR``),
2. the directory named by the environment variable ``CNN_KIT_MNIST``,
3. the kit cache (``$CNN_KIT_CACHE``, default ``~/.cache/cnn-kit``), if already staged and valid,
4. torchvision's own download into the cache (fails offline; then :class:`MNISTNotFound`).

MNIST: Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0.
"""

from __future__ import annotations

import functools
import math
import os
import pathlib
import struct

import torch

from .student.data import (CACHE_VAR, FILES, MNIST_DIR_VAR, MNISTCorrupt, MNISTNotFound, _raw_dir,
                           cache_root, stage_mnist)

__all__ = [
    "CACHE_VAR",
    "FILES",
    "MNIST_DIR_VAR",
    "MNISTCorrupt",
    "MNISTNotFound",
    "cache_root",
    "describe_source",
    "load_mnist",
    "stage_mnist",
]

# train -> (images file, labels file)
_SPLITS: dict[bool, tuple[str, str]] = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def describe_source(source: str | os.PathLike[str] | None = None) -> str:
    """One line saying which source :func:`stage_mnist` would use (nothing is verified)."""
    if source is not None:
        return f"MNIST from {source} (--mnist)"
    env = os.environ.get(MNIST_DIR_VAR)
    if env:
        return f"MNIST from {env} (${MNIST_DIR_VAR})"
    raw = _raw_dir(cache_root())
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


def load_mnist(
    train: bool, root: str | os.PathLike[str] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``uint8 [N, 28, 28]`` and labels ``int64 [N]`` of the train or test split.

    ``root`` is a staged root (``<root>/MNIST/raw/``); None stages first with
    :func:`stage_mnist`. Results are memoised per (root, train) within the process, so
    the tensors are shared between callers: do not modify them in place.
    """
    if root is None:
        root = stage_mnist()
    return _load(str(pathlib.Path(root).expanduser().resolve()), bool(train))
