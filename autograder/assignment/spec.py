"""The lecture's SimpleCNN and its training loop: the reference of the kit's MNIST accuracy recipe.

``train.py`` sizes its budget and calibrates its thresholds on this network, and assignment 2's
checks (``source/a2_simplecnn_mnist/checks.py``) derive the expected shapes and parameter counts
from it by tracing. The loose numbers are the lecture's own figures, checked by ``tests/test_spec.py``.
"""
from __future__ import annotations

import torch
import torch.nn as nn

# The lecture's SimpleCNN (dimension-tracking section)


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


def reference_train_one_epoch(model, loader, criterion, optimizer, device, *, zero_grad=True, train_mode=True,
                              per_image=False):
    """The lecture's training loop for one epoch; returns the mean batch loss (`per_image`: the mean loss
    per image, the other usual epoch loss). `zero_grad`, `train_mode` off: the usual mistakes' loops."""
    if train_mode:
        model.train()
    running_loss = 0.0
    batches = images = 0
    for inputs, labels in loader:
        inputs, labels = inputs.to(device), labels.to(device)
        if zero_grad:
            optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item() * (inputs.size(0) if per_image else 1)
        batches += 1
        images += inputs.size(0)
    return running_loss / (images if per_image else batches)


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
