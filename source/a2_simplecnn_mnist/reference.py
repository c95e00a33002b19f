"""Assignment 2's reference: the lecture's SimpleCNN, its training loop and evaluation, the probes' small
networks, and the accuracy recipe (MNIST, each profile's budget, the calibrated minimum in ``calibration/``).

The checks (``checks.py``) derive the expected shapes and parameter counts from these networks by tracing;
the grader's training guard times SimpleCNN beside the student's network and the calibration trains it
(``python -m autograder.judge.calibrate``). The loose numbers are the lecture's own figures, checked by
``tests/test_spec.py``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from autograder import data
from autograder.judge.recipe import Dataset, calibrated

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


# The small networks the training-loop and evaluation probes hand the student's functions, in the sandbox:
# each is sent there as its source text (``probe.net_spec``), so it imports what it uses itself.

def probe_net_dropout(seed):
    """A small SimpleCNN with Dropout: the mode the student's function sets shows in what it computes."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(0.5), nn.Linear(8 * 14 * 14, 10))


# The accuracy recipe: the grader trains the student's network on MNIST with each profile's budget.

def load_mnist(train: bool, settings) -> tuple[torch.Tensor, torch.Tensor]:
    """A split of MNIST (uint8 images [N, 28, 28], int64 labels), staged where the settings say."""
    return data.load_mnist(train, data.stage(settings))


MNIST = Dataset("MNIST", load_mnist, mean=0.1307, std=0.3081, classes=10, input_shape=MNIST_INPUT,
                reference=reference_simplecnn)   # mean, std: the training set's pixel statistics
ACCURACY = calibrated(Path(__file__).parent / "calibration", MNIST,
                      cpu=dict(epochs=1, batch_size=128, max_lr=6e-3, channels_last=True, amp=False),
                      gpu=dict(epochs=3, batch_size=512, max_lr=8e-3, channels_last=True, amp=True))
