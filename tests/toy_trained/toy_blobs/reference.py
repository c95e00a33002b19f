"""The toy trained assignment's reference: its network, its data set (ten patterns of blobs, made by a seeded function
here) and its accuracy recipe. Everything the kit needs to train and judge it lives in this folder."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from autograder.judge.recipe import Dataset, calibrated

INPUT = (1, 8, 8)
CLASSES = 10
HINT = "max pooling halves 8×8 to 4×4 (nn.MaxPool2d(2)), so Linear takes 4 × 4 × 4 = 64 features to 10 scores"


def blob_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64, CLASSES))


def load_blobs(train: bool, settings=None) -> tuple[torch.Tensor, torch.Tensor]:
    """A split of the data set: uint8 8×8 images of noise over the bright pixels of their class's pattern
    (ten fixed random patterns of blobs); seeded, so the same on every machine. No files: `settings` is
    not needed. An untrained network is near chance (10 %), a trained one near 100 % in two epochs."""
    patterns = (torch.rand(CLASSES, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    generator = torch.Generator().manual_seed(1 if train else 2)
    count = 800 if train else 400
    labels = torch.randint(0, CLASSES, (count,), generator=generator)
    images = torch.rand(count, 8, 8, generator=generator) * 100 + 120 * patterns[labels]
    return images.clamp(0, 255).to(torch.uint8), labels


BLOBS = Dataset("blobs", load_blobs, mean=0.35, std=0.25, classes=CLASSES, input_shape=INPUT, reference=blob_net)
RECIPE = dict(epochs=2, batch_size=32, max_lr=1e-2, channels_last=False, amp=False)
ACCURACY = calibrated(Path(__file__).parent / "calibration", BLOBS, cpu=RECIPE, gpu=RECIPE)
