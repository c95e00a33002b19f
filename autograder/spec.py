"""The reference: what the graders compare against, stated once.

Expected shapes and parameter counts are derived from these reference
definitions by tracing them; the only loose numbers are the lecture's own
``model.summary()`` figures, which a test checks the references against.
"""
from __future__ import annotations

import torch
import torch.nn as nn

# --- Assignment 2: the lecture's SimpleCNN (dimension-tracking section) -------------


def reference_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(32, 64, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
    )


def reference_classifier() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def reference_simplecnn() -> nn.Sequential:
    """SimpleCNN as one stack: features then classifier, exactly the lecture's forward()."""
    return nn.Sequential(reference_features(), reference_classifier())


MNIST_INPUT = (1, 28, 28)
LECTURE_SIMPLECNN_PARAMETERS = 421_642   # "Total params" of the lecture's network
LECTURE_ACCURACY = 99.11                # the lecture's 5-epoch test accuracy


def reference_train_one_epoch(model, loader, criterion, optimizer, device, *, zero_grad=True):
    """The lecture's training loop for one epoch; returns the mean batch loss."""
    model.train()
    running_loss = 0.0
    batches = 0
    for inputs, labels in loader:
        inputs, labels = inputs.to(device), labels.to(device)
        if zero_grad:
            optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        batches += 1
    return running_loss / batches


def reference_evaluate(model, loader, device, *, eval_mode=True):
    """The lecture's evaluation: test accuracy in percent."""
    if eval_mode:
        model.eval()
    correct = total = 0
    with torch.no_grad():
        for inputs, labels in loader:
            outputs = model(inputs.to(device))
            correct += (outputs.argmax(1) == labels.to(device)).sum().item()
            total += labels.size(0)
    return 100 * correct / total


# --- Assignment 1: the Keras tour's models, from their model.summary() tables --------
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
