"""Calibrate an assignment's accuracy profile: its reference network over many seeds gives the threshold.

    python -m autograder.judge.calibrate calibrate --assignment <a> --profile cpu --seeds 20
    python -m autograder.judge.calibrate run --assignment <a> --profile cpu     # one accuracy check of the reference

The threshold is written to ``source/<a>/calibration/<profile>.json`` (the one place it is written; the
assignment's ``reference.py`` reads it there with ``recipe.calibrated``). ``--assignment`` may be left out
where the source folder holds one trained assignment (one whose ``checks.py`` has an ``ACCURACY`` recipe).
This command is an edge: its settings (the data's folder, the source folder) come from ``CNN_KIT_*``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

from autograder.judge import train
from autograder.judge.recipe import Profile
from autograder.settings import Settings

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


def calibrate(profile: Profile, seeds: int, *, settings: Settings, device=None, bf16_on_cpu: bool = False) -> dict:
    """Run the data set's reference network with seeds 0..seeds-1 and derive the profile's threshold.

    Over 50 lines on purpose: the calibration recipe reads as one loop over the seeds, top to bottom."""
    device = train._device(device)
    reference = profile.dataset.reference
    print(f"calibrating profile {profile.name} on {device}, {seeds} seeds", flush=True)
    print(f"{'seed':>4}  {'accuracy':>8}  {'seconds':>7}", flush=True)
    load_before = os.getloadavg()
    accuracies, seconds = [], []
    for seed in range(seeds):
        report = train.train_and_evaluate(reference, profile, seed, device=device, bf16_on_cpu=bf16_on_cpu,
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
    recipe = {k: v for k, v in profile.plain().items() if k not in ("threshold", "dataset")}
    parameters = sum(p.numel() for p in reference().parameters())
    return {
        "command": " ".join(["python -m autograder.judge.calibrate", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_name,
        "calibrated_on": calibrated_on,
        "torch": torch.__version__,
        "profile": recipe,
        "amp_used": profile.amp and (device.type == "cuda" or bf16_on_cpu),
        "model": f"{reference.__name__} ({parameters:,} parameters), on {profile.dataset.name}",
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


def _assignment(name: str | None, settings: Settings):
    """The trained assignment `name` of the settings' source folder (the only one there, if no name)."""
    from autograder.assignment import assignments

    trained = assignments.trained(settings.source)
    if name is None and len(trained) == 1:
        return next(iter(trained.values()))
    if name not in trained:
        raise SystemExit(f"--assignment: one of {', '.join(trained) or 'none'} (the trained assignments of "
                         f"{settings.source})")
    return trained[name]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m autograder.judge.calibrate", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cal = sub.add_parser("calibrate", help="set a profile's threshold from the reference over many seeds")
    cal.add_argument("--seeds", type=int, default=20)
    cal.add_argument("--out", type=Path, default=None, help="default: source/<assignment>/calibration/<profile>.json")
    cal.add_argument("--bf16-on-cpu", action="store_true",
                     help="apply the profile's bf16 autocast on a CPU too (a provisional GPU threshold without a GPU)")
    run = sub.add_parser("run", help="one accuracy check of the assignment's reference network")
    run.add_argument("--seed", type=int, default=0)
    for command in (cal, run):
        command.add_argument("--assignment", default=None, help="default: the source folder's one trained assignment")
        command.add_argument("--profile", choices=("cpu", "gpu"), required=command is cal)
        command.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    args = parser.parse_args(argv)
    settings = Settings.from_env()  # this command is an edge: the data and the source folder from CNN_KIT_*
    assignment = _assignment(args.assignment, settings)
    profiles = assignment.module.ACCURACY
    if args.command == "calibrate":
        if args.seeds < 2:
            parser.error("--seeds must be at least 2: a threshold needs a spread")
        result = calibrate(profiles[args.profile], args.seeds, device=args.device, bf16_on_cpu=args.bf16_on_cpu,
                           settings=settings)
        out = args.out or Path(assignment.folder) / "calibration" / f"{args.profile}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    else:
        profile = train.select_profile(profiles, args.profile or settings.profile)
        report = train.train_and_evaluate(profile.dataset.reference, profile, args.seed, device=args.device,
                                          progress=True, settings=settings)
        print(report.describe())
        print(f"train {report.train_seconds:.1f} s, eval {report.eval_seconds:.1f} s, "
              f"before training {report.accuracy_before:.2f} %")


if __name__ == "__main__":
    main()
