"""Assignment 1's reference figures: the lecture's ``model.summary()`` tables and the transfer head.

The only loose numbers of this assignment; ``tests/test_spec.py`` checks them against the
lecture's text and against the networks they describe.
"""
from __future__ import annotations

import torch.nn as nn

# (input shape in PyTorch's channels-first order, output shape, parameters of each
#  layer that has any, in order, and the total) -- copied from the lecture's text.

LECTURE_SUMMARIES = {
    "conv1d_model": {"title": "Conv1D", "input": (1, 64), "output": (1,),
                     "layers": [("Conv1D", 128), ("Dense", 993)], "total": 1121},
    "conv2d_valid_model": {"title": "Conv2D (valid)", "input": (3, 64, 64), "output": (10,),
                           "layers": [("Conv2D", 896), ("Dense", 307530)], "total": 308426},
    "conv2d_same_model": {"title": "Conv2D (same)", "input": (3, 64, 64), "output": (10,),
                          "layers": [("Conv2D", 896), ("Dense", 327690)], "total": 328586},
    "conv2d_stride2_model": {"title": "Conv2D (same, stride 2)", "input": (3, 64, 64),
                             "output": (10,), "layers": [("Conv2D", 896), ("Dense", 81930)],
                             "total": 82826},
    "maxpool_model": {"title": "MaxPooling2D stack", "input": (3, 64, 64), "output": (10,),
                      "layers": [("Conv2D", 896), ("Conv2D", 18496), ("Dense", 125450)],
                      "total": 144842},
    "upsampling_model": {"title": "UpSampling2D", "input": (3, 32, 32), "output": (10,),
                         "layers": [("Conv2D", 896), ("Conv2D", 18496), ("Dense", 2152970)],
                         "total": 2172362},
    "gap_model": {"title": "GlobalAveragePooling2D", "input": (3, 64, 64), "output": (10,),
                  "layers": [("Conv2D", 896), ("Dense", 330)], "total": 1226},
    "rgb_convnet": {"title": "ConvNet for 3×32×32", "input": (3, 32, 32), "output": (10,),
                    "layers": [("Conv2d", 448), ("Conv2d", 4640), ("Linear", 20490)],
                    "total": 25578},
}

# Transfer learning: the head that replaces the classifier on a frozen extractor,
# as in the lecture's VGG16 example (GlobalAveragePooling2D, Dense 256, Dropout, Dense).
TRANSFER_HIDDEN = 256


def reference_transfer_head(channels: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, TRANSFER_HIDDEN),
                         nn.ReLU(), nn.Dropout(0.5), nn.Linear(TRANSFER_HIDDEN, num_classes))
