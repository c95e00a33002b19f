"""The accuracy check's training recipe: train a model on MNIST from scratch, then test it.

The grader trains the *student's* architecture (a zero-argument factory that
returns a fresh ``nn.Module``) with one fixed, seeded, fast recipe, the same for
every student, and demands a minimum accuracy on the 10k test images. The
recipe is a profile: ``cpu`` (fp32, batch 128, one epoch) or ``gpu`` (bf16
autocast, batch 512, three epochs); both use channels_last (faster on CPUs
too), Adam with a OneCycle learning-rate schedule, and keep the data as one
uint8 tensor on the device, normalised batch by batch, without a DataLoader.
Same seed and device, same result (bit for bit on a CPU with the same thread
count; on a GPU cuDNN is held to deterministic algorithms, not yet checked on one).

Each profile's threshold comes from a calibration run of the lecture's
SimpleCNN over many seeds (``calibration/<profile>.json``)::

    python -m autograder.judge.train calibrate --profile cpu --seeds 20
"""
from __future__ import annotations

import argparse
import copy
import ctypes
import datetime
import functools
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from autograder import data
from autograder.settings import Settings
from autograder.assignment.spec import reference_simplecnn

MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel statistics
CALIBRATION_DIR = Path(__file__).parents[1] / "calibration"


@dataclass(frozen=True)
class Profile:
    name: str  # "cpu" or "gpu"
    epochs: int
    batch_size: int
    max_lr: float
    threshold: float  # minimum test accuracy (percent) the accuracy check demands
    channels_last: bool
    amp: bool  # bf16 autocast (GPU only)


def _calibrated(name: str, **recipe) -> Profile:
    """A profile whose threshold is read from calibration/<name>.json, the one place it is written."""
    calibration = json.loads((CALIBRATION_DIR / f"{name}.json").read_text())
    return Profile(name, threshold=float(calibration["threshold"]), **recipe)


# Thresholds are not guessed: calibrate() writes them to calibration/<name>.json, and they are read there.
PROFILES: dict[str, Profile] = {
    "cpu": _calibrated("cpu", epochs=1, batch_size=128, max_lr=6e-3, channels_last=True, amp=False),
    "gpu": _calibrated("gpu", epochs=3, batch_size=512, max_lr=8e-3, channels_last=True, amp=True),
}


def select_profile(name: str | None = None, settings: Settings | None = None) -> Profile:
    """The named profile; by default the settings' (without settings, the environment's: CNN_KIT_PROFILE),
    else "gpu" where CUDA exists, else "cpu"."""
    if name is None:
        name = (settings or Settings.from_env()).profile or ("gpu" if torch.cuda.is_available() else "cpu")
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(sorted(PROFILES))}")
    return PROFILES[name]


@dataclass
class AccuracyReport:
    device: str
    profile: str
    epochs: int
    seed: int
    seconds: float  # training plus the final evaluation
    accuracy: float  # percent, on the 10k test images
    accuracy_before: float  # percent, of the freshly initialised model
    threshold: float
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    curve: list = field(default_factory=list)  # mean training loss over each of up to CURVE_POINTS stretches

    @property
    def passed(self) -> bool:
        return self.accuracy >= self.threshold

    def describe(self) -> str:
        epochs = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        return (f"{self.accuracy:.2f} % on {self.device} (profile {self.profile}, {epochs}, "
                f"seed {self.seed}) in {self.seconds:.1f} s; needs >= {self.threshold:.1f} %")


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
def _mnist(train: bool, settings: Settings | None) -> tuple[torch.Tensor, torch.Tensor]:
    return data.load_mnist(train, data.stage(settings or Settings.from_env()))


@functools.cache
def _mnist_on(train: bool, device: torch.device, settings: Settings | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as uint8 images [N,28,28] and int64 labels [N] on the device, once per process (and settings)."""
    images, labels = _mnist(train, settings)
    return images.to(device), labels.to(device)


def _normalise(images_u8: torch.Tensor, mean: float = MEAN, std: float = STD,
               channels_last: bool = False) -> torch.Tensor:
    x = images_u8.unsqueeze(1).float().div_(255).sub_(mean).div_(std)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.shape != (x.shape[0], 10):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the model must map images of shape [N, 1, 28, 28] to logits of shape "
                         f"[N, 10]; for N = {x.shape[0]} it returned {got}")
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


def _seconds_per_image(models: list[nn.Module], x: torch.Tensor, device: torch.device, amp: bool) -> list[float]:
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
                    _logits(model, x).float().sum().backward()
                _sync(device)
                best[index] = min(best[index], time.perf_counter() - started)
    return [seconds / len(x) for seconds in best]


def guard(model: nn.Module, images_u8: torch.Tensor, profile: Profile, steps: int, device: torch.device,
          amp: bool, settings: Settings | None = None) -> float:
    """Seconds the training may run before the guard stops it: the settings' CNN_KIT_TRAIN_GUARD, else
    GUARD_RATIO times the time this network or the lecture's would take (the slower), measured here, now,
    side by side, and at least GUARD_SECONDS[profile]. It never decides a grade."""
    if settings is not None and settings.train_guard:
        return float(settings.train_guard)
    x = _normalise(images_u8[:TIMING_BATCH].to(device), channels_last=profile.channels_last)
    with torch.random.fork_rng(devices=[]):  # building it draws weights: keep the seeded stream as it was
        reference = reference_simplecnn().to(device)
    if profile.channels_last:
        reference = reference.to(memory_format=torch.channels_last)
    images = steps * profile.batch_size
    slowest = max(_seconds_per_image([model, reference], x, device, amp)) * images
    return max(GUARD_SECONDS.get(profile.name, 0.0), GUARD_RATIO * slowest)


# ----------------------------------------------------------------------------- the check

@torch.inference_mode()
def evaluate(model: nn.Module, images_u8: torch.Tensor, labels: torch.Tensor, device,
             batch_size: int = 2000, *, mean: float = MEAN, std: float = STD) -> float:
    """Accuracy in percent of `model` on uint8 images [N,28,28] with int64 labels [N]."""
    device = _device(device)
    was_training = model.training
    model.eval()
    # Memory-bounded batches: a network with large activations is tested a few images at a time.
    per_image = _activations_per_image(model, _normalise(images_u8[:2].to(device), mean, std))
    batch_size = max(1, min(batch_size, EVAL_BYTES // (4 * per_image)))
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for i in range(0, len(labels), batch_size):
        x = _normalise(images_u8[i:i + batch_size].to(device), mean, std)
        correct += (_logits(model, x).argmax(1) == labels[i:i + batch_size].to(device)).sum()
    model.train(was_training)
    return 100.0 * int(correct) / len(labels)


def train_and_evaluate(build_model, profile: Profile, seed: int = 0, *, device=None,
                       progress: bool = False, max_train_batches: int | None = None,
                       bf16_on_cpu: bool = False, settings: Settings | None = None) -> AccuracyReport:
    """Train a fresh `build_model()` on the 60k training images with `profile`, test on the 10k.

    MNIST comes from `settings` (without them, the environment's). `bf16_on_cpu` applies a profile's
    bf16 autocast on a CPU too: only to calibrate the GPU profile provisionally where there is no GPU;
    grading never sets it.
    """
    device = _device(device)
    if device.type == "cpu":
        _reuse_freed_memory()
    x_train, y_train = _mnist_on(True, device, settings)
    x_test, y_test = _mnist_on(False, device, settings)
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
    accuracy_before = evaluate(model, x_test, y_test, device)
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
            x = _normalise(x_train[idx], channels_last=profile.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(_logits(model, x), y_train[idx])
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
    accuracy = evaluate(model, x_test, y_test, device)
    done = time.perf_counter()

    return AccuracyReport(device=str(device), profile=profile.name, epochs=profile.epochs, seed=seed,
                          seconds=done - start, accuracy=accuracy, accuracy_before=accuracy_before,
                          threshold=profile.threshold, train_seconds=trained - start,
                          eval_seconds=done - trained,
                          curve=[round(v, 4) for v in torch.stack(stretches).tolist()] if stretches else [])


# ----------------------------------------------------------------------------- calibration

THRESHOLD_RULE = ("largest multiple of 0.1 that is <= min(accuracies) - max(0.3, 3 * std), "
                  "std = sample standard deviation over the seeds")


def threshold_from(accuracies: list[float]) -> float:
    margin = max(0.3, 3 * statistics.stdev(accuracies))
    return math.floor(round((min(accuracies) - margin) * 10, 6)) / 10


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def calibrate(profile: Profile, seeds: int, *, device=None, bf16_on_cpu: bool = False,
              settings: Settings | None = None) -> dict:
    """Run the reference SimpleCNN with seeds 0..seeds-1 and derive the profile's threshold."""
    device = _device(device)
    print(f"calibrating profile {profile.name} on {device}, {seeds} seeds", flush=True)
    print(f"{'seed':>4}  {'accuracy':>8}  {'seconds':>7}", flush=True)
    load_before = os.getloadavg()
    accuracies, seconds = [], []
    for seed in range(seeds):
        report = train_and_evaluate(reference_simplecnn, profile, seed, device=device, bf16_on_cpu=bf16_on_cpu,
                                    settings=settings)
        accuracies.append(report.accuracy)
        seconds.append(round(report.seconds, 2))
        print(f"{seed:>4}  {report.accuracy:>8.2f}  {report.seconds:>7.1f}", flush=True)

    summary = {"mean": statistics.mean(accuracies), "std": statistics.stdev(accuracies),
               "min": min(accuracies), "max": max(accuracies)}
    print("mean {mean:.3f}  std {std:.3f}  min {min:.2f}  max {max:.2f}".format(**summary))
    threshold = threshold_from(accuracies)
    print(f"threshold {threshold:.1f} ({THRESHOLD_RULE})")

    if device.type == "cuda":
        device_name = calibrated_on = torch.cuda.get_device_name(device)
    else:
        device_name = f"{_cpu_name()}, {torch.get_num_threads()} threads"
        calibrated_on = "cpu"
        if profile.amp:
            emulation = "with its bf16 autocast" if bf16_on_cpu else "in fp32"
            calibrated_on = f"cpu (the GPU recipe emulated {emulation}; re-run on a GPU)"
    recipe = {k: v for k, v in asdict(profile).items() if k != "threshold"}
    return {
        "command": " ".join(["python -m autograder.judge.train", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_name,
        "calibrated_on": calibrated_on,
        "torch": torch.__version__,
        "profile": recipe,
        "amp_used": profile.amp and (device.type == "cuda" or bf16_on_cpu),
        "model": "reference_simplecnn (the lecture's SimpleCNN, 421,642 parameters)",
        "seeds": list(range(seeds)),
        "accuracies": accuracies,
        "seconds": seconds,
        "seconds_note": "wall clock of training + final evaluation; other processes on the machine "
                        "inflate it (see load_average)",
        "load_average": {"start": [round(x, 2) for x in load_before],
                         "end": [round(x, 2) for x in os.getloadavg()]},
        **summary,
        "threshold": threshold,
        "rule": THRESHOLD_RULE,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m autograder.judge.train", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cal = sub.add_parser("calibrate", help="set a profile's threshold from the reference over many seeds")
    cal.add_argument("--profile", choices=sorted(PROFILES), required=True)
    cal.add_argument("--seeds", type=int, default=20)
    cal.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    cal.add_argument("--out", type=Path, default=None, help="default: autograder/calibration/<profile>.json")
    cal.add_argument("--bf16-on-cpu", action="store_true",
                     help="apply the profile's bf16 autocast on a CPU too (a provisional GPU threshold without a GPU)")
    run = sub.add_parser("run", help="one accuracy check of the reference SimpleCNN")
    run.add_argument("--profile", choices=sorted(PROFILES), default=None)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    settings = Settings.from_env()  # this command is an edge: MNIST and the profile from CNN_KIT_*

    if args.command == "calibrate":
        if args.seeds < 2:
            parser.error("--seeds must be at least 2: a threshold needs a spread")
        result = calibrate(PROFILES[args.profile], args.seeds, device=args.device, bf16_on_cpu=args.bf16_on_cpu,
                           settings=settings)
        out = args.out or CALIBRATION_DIR / f"{args.profile}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    else:
        report = train_and_evaluate(reference_simplecnn, select_profile(args.profile, settings), args.seed,
                                    device=args.device, progress=True, settings=settings)
        print(report.describe())
        print(f"train {report.train_seconds:.1f} s, eval {report.eval_seconds:.1f} s, "
              f"before training {report.accuracy_before:.2f} %")


if __name__ == "__main__":
    main()
