"""The accuracy check's training recipe: train a network from scratch on an assignment's data set, then test it.

The grader trains the *student's* architecture (a zero-argument factory that returns a fresh ``nn.Module``)
with one fixed, seeded, fast recipe, the same for every student, and demands a minimum accuracy on the data
set's test split. What to train on and how long is the assignment's (a :class:`~autograder.judge.recipe.Profile`
with its :class:`~autograder.judge.recipe.Dataset`, from ``source/<assignment>/reference.py``); how is this
module's, the same for every assignment: channels_last (faster on CPUs too), Adam with a OneCycle learning-rate
schedule, the profile's bf16 autocast on a GPU, and the data kept as one uint8 tensor on the device,
normalised batch by batch, without a DataLoader. Same seed and device, same result (bit for bit on a CPU with
the same thread count; on a GPU cuDNN is held to deterministic algorithms, not yet checked on one).

Each profile's threshold comes from a calibration run of the assignment's reference network over many seeds
(``python -m autograder.judge.calibrate``, written to ``source/<assignment>/calibration/<profile>.json``).
"""
from __future__ import annotations

import copy
import ctypes
import functools
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from autograder.judge.recipe import AccuracyReport, Dataset, Profile, select_profile  # noqa: F401 (the recipe's types)
from autograder.settings import Settings


# ----------------------------------------------------------------------------- helpers

def _device(device) -> torch.device:
    return torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@functools.cache
def _reuse_freed_memory() -> None:
    """On glibc, keep freed memory for reuse instead of handing it back to the OS at once.

    Otherwise each batch's activations (megabytes) are mmap'ed and unmapped again, and on a
    small CPU the page faults cost as much as a third of the accuracy check's time.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows, musl): nothing to do
        return
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)


@functools.cache
def _data_on(dataset: Dataset, train: bool, device: torch.device, settings: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    """A split of the data set as uint8 images [N,H,W] and int64 labels [N] on the device, once per process."""
    images, labels = dataset.load(train, settings)
    return images.to(device), labels.to(device)


def _normalise(images_u8: torch.Tensor, mean: float, std: float, channels_last: bool = False) -> torch.Tensor:
    x = (images_u8.unsqueeze(1) if images_u8.dim() == 3 else images_u8).float().div_(255).sub_(mean).div_(std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _logits(model: nn.Module, x: torch.Tensor, classes: int) -> torch.Tensor:
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.shape != (x.shape[0], classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the model must map images of shape [N, {', '.join(map(str, x.shape[1:]))}] to logits "
                         f"of shape [N, {classes}]; for N = {x.shape[0]} it returned {got}")
    return out


class GuardStopped(RuntimeError):
    """The wall-clock guard stopped a training: a runaway or a busy machine, not a verdict on the network.

    The accuracy check then has no verdict (the submission is listed "to regrade"), never a score of 0:
    whether a network is too costly is decided by what it is (parameters, activations and FLOPs per
    image against the lecture's: ``layers`` and the assignment's checks), the same on every machine."""


EVAL_BYTES = 1 << 30   # activations held at once while testing (the reference's 2000 images: ~0.7 GB)
CURVE_POINTS = 40      # points of the training-loss curve a report keeps (the feedback draws it)
TIMING_BATCH = 64      # images in the forward and backward pass timed before training


def _activations_per_image(model: nn.Module, x: torch.Tensor) -> int:
    """Values every leaf layer outputs for one image of `x`'s batch, added up (a forward pass of `x`)."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return max(1, total // x.shape[0])


# The wall-clock guard protects the machine and never grades: a network within the cost limits is trained to
# the end of the recipe. It is GUARD_RATIO times what this network and the lecture's, timed side by side on
# this machine before training, would need (the slower of the two), and at least GUARD_SECONDS[profile]: a
# machine that becomes ten times busier in mid-training still finishes (the reference needs 12-20 s on 2 CPU
# cores); a training that hangs or crawls is stopped and regraded later. CNN_KIT_TRAIN_GUARD sets it instead.
GUARD_RATIO = 10.0
GUARD_SECONDS = {"cpu": 900.0, "gpu": 300.0}


def _seconds_per_image(models: list[nn.Module], x: torch.Tensor, device: torch.device, amp: bool,
                       classes: int) -> list[float]:
    """Wall seconds of one forward and backward pass per image of `x` for each model, the best of three.

    The models are timed in turn (A B A B ...), so a change in the machine's load hits them alike;
    on copies, with the random number generators restored afterwards, so timing changes neither the
    weights nor the seeded training that follows.
    """
    models = [copy.deepcopy(model) for model in models]
    best = [math.inf] * len(models)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for _ in range(3):  # the first round also warms up kernels and allocations
            for index, model in enumerate(models):
                _sync(device)
                started = time.perf_counter()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                    _logits(model, x, classes).float().sum().backward()
                _sync(device)
                best[index] = min(best[index], time.perf_counter() - started)
    return [seconds / len(x) for seconds in best]


def guard(model: nn.Module, images_u8: torch.Tensor, profile: Profile, steps: int, device: torch.device,
          amp: bool, settings: Settings | None = None) -> float:
    """Seconds the training may run before the guard stops it: the settings' CNN_KIT_TRAIN_GUARD, else
    GUARD_RATIO times the time this network or the lecture's (the data set's reference) would take (the
    slower), measured here, now, side by side, and at least GUARD_SECONDS[profile]. It never decides a grade."""
    if settings is not None and settings.train_guard:
        return float(settings.train_guard)
    dataset = profile.dataset
    x = _normalise(images_u8[:TIMING_BATCH].to(device), dataset.mean, dataset.std, profile.channels_last)
    with torch.random.fork_rng(devices=[]):  # building it draws weights: keep the seeded stream as it was
        reference = dataset.reference().to(device)
    if profile.channels_last:
        reference = reference.to(memory_format=torch.channels_last)
    images = steps * profile.batch_size
    slowest = max(_seconds_per_image([model, reference], x, device, amp, dataset.classes)) * images
    return max(GUARD_SECONDS.get(profile.name, 0.0), GUARD_RATIO * slowest)


# ----------------------------------------------------------------------------- the check

@torch.inference_mode()
def evaluate(model: nn.Module, images_u8: torch.Tensor, labels: torch.Tensor, device, dataset: Dataset,
             batch_size: int = 2000) -> float:
    """Accuracy in percent of `model` on uint8 images [N,H,W] of `dataset` with int64 labels [N]."""
    mean, std = dataset.mean, dataset.std
    device = _device(device)
    was_training = model.training
    model.eval()
    # Memory-bounded batches: a network with large activations is tested a few images at a time.
    per_image = _activations_per_image(model, _normalise(images_u8[:2].to(device), mean, std))
    batch_size = max(1, min(batch_size, EVAL_BYTES // (4 * per_image)))
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for i in range(0, len(labels), batch_size):
        x = _normalise(images_u8[i:i + batch_size].to(device), mean, std)
        correct += (_logits(model, x, dataset.classes).argmax(1) == labels[i:i + batch_size].to(device)).sum()
    model.train(was_training)
    return 100.0 * int(correct) / len(labels)


def train_and_evaluate(build_model, profile: Profile, seed: int = 0, *, device=None,
                       progress: bool = False, max_train_batches: int | None = None,
                       bf16_on_cpu: bool = False, settings: Settings) -> AccuracyReport:
    """Train a fresh `build_model()` on the training split of the profile's data set, test on its test split.

    The data set is loaded with `settings` (where its files are). `bf16_on_cpu` applies a profile's bf16
    autocast on a CPU too: only to calibrate the GPU profile provisionally where there is no GPU; grading
    never sets it. One function over 50 lines: the recipe reads best as one loop, top to bottom.
    """
    device = _device(device)
    if device.type == "cpu":
        _reuse_freed_memory()
    dataset = profile.dataset
    x_train, y_train = _data_on(dataset, True, device, settings)
    x_test, y_test = _data_on(dataset, False, device, settings)
    amp = profile.amp and (device.type == "cuda" or bf16_on_cpu)  # bf16 autocast is for the GPU alone
    if device.type == "cuda":  # same seed, same GPU, same accuracy: no run-to-run choice of conv algorithm
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False

    torch.manual_seed(seed)  # the initial weights (and any dropout) follow the seed
    model = build_model()
    if not isinstance(model, nn.Module):
        raise TypeError(f"build_model() must return an nn.Module, not {type(model).__name__}")
    model = model.to(device)
    if profile.channels_last:
        model = model.to(memory_format=torch.channels_last)

    n = len(y_train)
    steps = profile.epochs * math.ceil(n / profile.batch_size)
    if max_train_batches is not None:
        steps = min(steps, max_train_batches)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters: there is nothing to train")
    limit = guard(model, x_train, profile, steps, device, amp, settings)
    accuracy_before = evaluate(model, x_test, y_test, device, dataset)
    fused = True if device.type == "cuda" else None  # one kernel per step for all parameters
    optimizer = torch.optim.Adam(params, lr=profile.max_lr, fused=fused)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=profile.max_lr, total_steps=steps)
    shuffle = torch.Generator().manual_seed(seed)  # on the CPU: the same order on every device

    _sync(device)
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=steps, desc=f"training ({profile.name})", unit="batch", file=sys.stderr,
               disable=not progress)
    step = 0
    stretch = max(1, steps // CURVE_POINTS)  # the curve: summed on the device, read once at the end
    running, stretches = torch.zeros((), device=device), []
    while step < steps:
        order = torch.randperm(n, generator=shuffle).to(device)
        for i in range(0, n, profile.batch_size):
            if step == steps:
                break
            idx = order[i:i + profile.batch_size]
            x = _normalise(x_train[idx], dataset.mean, dataset.std, profile.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(_logits(model, x, dataset.classes), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            running += loss.detach().float()
            if step % stretch == 0 or step == steps:
                stretches.append(running / (step - stretch * (len(stretches))))
                running = torch.zeros((), device=device)
            bar.update()
            if time.perf_counter() - start > limit:
                raise GuardStopped(f"the machine's wall-clock guard stopped training after {step} of {steps} "
                                   f"batches ({limit:.0f} s on {device}: the machine was too busy or the "
                                   "training hung)")
            if progress and step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    _sync(device)
    trained = time.perf_counter()
    accuracy = evaluate(model, x_test, y_test, device, dataset)
    done = time.perf_counter()

    return AccuracyReport(device=str(device), profile=profile.name, epochs=profile.epochs, seed=seed,
                          seconds=done - start, accuracy=accuracy, accuracy_before=accuracy_before,
                          threshold=profile.threshold, train_seconds=trained - start,
                          eval_seconds=done - trained, dataset=dataset.name,
                          curve=[round(v, 4) for v in torch.stack(stretches).tolist()] if stretches else [])
