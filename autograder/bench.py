"""The benchmark behind BENCHMARKS.md: `python -m autograder.bench [--sections lecture,grading,isolation]`.

In one run on one device it measures
1. the lecture's pipeline (torchvision + DataLoader, batch 64, Adam 1e-3) against the grader's recipe:
   training seconds to reach the profile's threshold, final accuracy, and the ratio;
2. the time to grade one submission of each assignment with `nbgrader autograde` (notebook execution
   and the kit's checks), split into set-up, sandbox + structure checks, accuracy check, feedback,
   and the peak RSS of the grading process (GPU memory where there is a GPU);
3. the extra time that isolation costs: the sandbox with bubblewrap against a plain subprocess.
The reference's accuracy spread across seeds is the calibration's (`python -m autograder.judge.calibrate calibrate`), a
class's throughput with and without the shared accuracy cache `python -m autograder.classbench`'s.
Absolute times hold for the device named in the output; compare runs by their ratios.
The command is an edge: its settings (MNIST, the cache) come from ``CNN_KIT_*`` and are passed down.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from autograder.judge import train
from autograder.course.folder import Course
from autograder.settings import Settings


def device_name() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA), torch {torch.__version__}"
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def mnist_profiles(settings: Settings) -> dict:
    """The accuracy profiles of the source folder's assignment trained on MNIST: the lecture's pipeline,
    which section 1 compares the grader's recipe with, is MNIST's."""
    from autograder.assignment import assignments

    for assignment in assignments.trained(settings.source).values():
        profiles = assignments.accuracy_profiles(assignment)
        if profiles["cpu"].dataset.name == "MNIST":
            return profiles
    raise SystemExit(f"no assignment of {settings.source} trains on MNIST: nothing to compare the lecture's with")


def lecture_pipeline(build_model, settings: Settings, *, seed: int = 0, epochs: int = 5,
                     target: float | None = None, device=None, eval_every: int = 200, progress: bool = False) -> dict:
    """The lecture's own recipe, which section 1 compares the grader's with: torchvision MNIST,
    DataLoader(64), Adam(1e-3), normalised with mean and std 0.5. One function, over 50 lines: it is the
    lecture's loop as the lecture writes it, timed around its parts, so that it reads as the thing compared.

    With a `target` (percent) the test accuracy is measured every `eval_every` batches and at each
    epoch's end; `seconds_to_target` counts training time only, never evaluation time.
    """
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    from autograder.data import stage

    device = train._device(device)
    if device.type == "cpu":
        train._reuse_freed_memory()
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    train_set = datasets.MNIST(root=stage(settings), train=True, download=False, transform=transform)
    loader = DataLoader(train_set, batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    mnist = mnist_profiles(settings)["cpu"].dataset
    x_test, y_test = train._data_on(mnist, False, device, settings)
    test = functools.partial(train.evaluate, images_u8=x_test, labels=y_test, device=device,
                             dataset=dataclasses.replace(mnist, mean=0.5, std=0.5))  # the lecture's normalisation

    torch.manual_seed(seed)
    model = build_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    trained = 0.0  # seconds spent training so far
    loading = 0.0  # of which: waiting for the DataLoader's next batch (decoding, transforms, collation)
    seconds_to_target = None
    epoch_seconds = []
    batches = 0
    for epoch in range(epochs):
        model.train()
        epoch_start = trained
        tick = time.perf_counter()
        batch_ready = tick
        for images, labels in tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", file=sys.stderr,
                                   disable=not progress):
            loading += time.perf_counter() - batch_ready
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            batches += 1
            last_batch = batches % len(loader) == 0
            if target is not None and seconds_to_target is None and (batches % eval_every == 0 or last_batch):
                train._sync(device)
                trained += time.perf_counter() - tick
                if test(model) >= target:
                    seconds_to_target = trained
                tick = time.perf_counter()
            batch_ready = time.perf_counter()
        train._sync(device)
        trained += time.perf_counter() - tick
        epoch_seconds.append(trained - epoch_start)
    return {"device": str(device), "seed": seed, "epochs": epochs, "target": target,
            "seconds_to_target": seconds_to_target, "accuracy": test(model),
            "epoch_seconds": epoch_seconds, "train_seconds": trained, "loading_seconds": loading}


def recipe_vs_lecture(profile: train.Profile, lecture_epochs: int, device, settings: Settings) -> dict:
    reference = profile.dataset.reference
    recipe = train.train_and_evaluate(reference, profile, seed=0, device=device, settings=settings)
    lecture = lecture_pipeline(reference, settings, seed=0, epochs=lecture_epochs,
                               target=profile.threshold, device=device)
    reached = recipe.accuracy >= profile.threshold
    ratio = (lecture["seconds_to_target"] / recipe.seconds
             if lecture["seconds_to_target"] is not None and reached else None)
    return {"profile": profile.name, "threshold": profile.threshold,
            "recipe_seconds": recipe.seconds, "recipe_train_seconds": recipe.train_seconds,
            "recipe_accuracy": recipe.accuracy, "lecture_seconds_to_target": lecture["seconds_to_target"],
            "lecture_epoch_seconds": lecture["epoch_seconds"], "lecture_accuracy": lecture["accuracy"],
            "lecture_epochs": lecture_epochs, "lecture_train_seconds": lecture["train_seconds"],
            "lecture_loading_seconds": lecture["loading_seconds"], "ratio": ratio}


def _grade_one(course_dir: str, assignment: str, student: str) -> None:
    """Child process: autograde and give feedback for one submission, print timings as JSON."""
    from autograder.course import steps as course

    root = Path(course_dir)
    api = course.nbgrader_api(root)
    started = time.perf_counter()
    result = api.autograde(assignment, student, force=True, create=True)
    autograded = time.perf_counter()
    api.generate_feedback(assignment, student, force=True)
    done = time.perf_counter()
    report = json.loads(course.report_path(root, student, assignment).read_text())
    gpu = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else None
    print(json.dumps({"success": result["success"], "autograde_seconds": autograded - started,
                      "feedback_seconds": done - autograded, "kit_seconds": report["seconds"],
                      "score": report["score"], "points": report["points"], "gpu_bytes": gpu}))


def _sample_course(folder: Path, names: list[str], settings: Settings) -> Path:
    """A course folder with the assignments released and the kit's sample submissions in it."""
    from autograder.course import steps as course
    from autograder.assignment import samples

    root = course.prepare_course(folder / "course", names, settings.source)
    api = course.nbgrader_api(root, settings)
    for name in names:
        api.generate_assignment(name, force=True, create=True)
        samples.write_samples(root, name, settings.source)
    return root


def grading_times(repeats: int, settings: Settings) -> list[dict]:
    """Each assignment's reference graded `repeats` times, each in a process of its own (given `settings`)."""
    from autograder.assignment import release
    from autograder.course.steps import tools_env

    rows = []
    with tempfile.TemporaryDirectory(prefix="cnn-kit-bench-") as tmp:
        names = release.assignments(settings.source)
        root = _sample_course(Path(tmp), names, settings)
        for name in names:
            for _ in range(repeats):
                # a submission the class has not seen: no accuracy from an earlier repeat's cache
                shutil.rmtree(Course(root).accuracy_cache, ignore_errors=True)
                process = subprocess.Popen([sys.executable, "-m", "autograder.bench", "--grade-one", str(root),
                                            name, "reference"], stdout=subprocess.PIPE, text=True,
                                           env=tools_env(os.environ, settings))
                output = process.stdout.read()
                _, status, usage = os.wait4(process.pid, 0)
                data = json.loads(output.strip().splitlines()[-1])
                data.update(assignment=name, peak_rss_mb=usage.ru_maxrss / 1024, exit=status)
                rows.append(data)
    return rows


def isolation_cost(repeats: int, settings: Settings) -> dict:
    """Seconds to run assignment 1's probes: bubblewrap with the process forked from the sandbox template,
    bubblewrap with a fresh Python, and a plain subprocess; and to run a one-cell notebook (``import torch``)
    in nbgrader's sandboxed kernel, forked from the template and fresh. Alternating, median of `repeats`."""
    import nbformat
    from nbclient import NotebookClient
    from traitlets.config import Config

    from autograder.assignment import assignments
    from autograder.sandbox import bwrap
    from autograder.sandbox import runner as sandbox
    from autograder.sandbox import zygote
    from autograder.sandbox.kernel import SandboxedKernelManager
    from autograder.judge.notebook import build_program

    # the first assignment of the source folder that trains nothing (assignment 1): its probes alone are timed
    sizes = next(a for a in assignments.discover(settings.source).values() if not assignments.accuracy_profiles(a))
    source = nbformat.read(sizes.source_notebook, as_version=4)
    program = build_program(source, source)
    probes = sizes.probes(0)
    if bwrap.isolation_available() != "bwrap":
        return {"note": "bubblewrap is not available here"}
    template = zygote.usable("bwrap")

    def probe_run(mode: str) -> None:
        sandbox.run_probes(program.cells, probes, bwrap=mode != "limits only", template=mode == "bwrap, template")

    def kernel_run(mode: str) -> None:
        config = Config()
        config.SandboxedKernelManager.settings = settings.replace(sandbox_template=mode == "template")
        with tempfile.TemporaryDirectory(prefix="cnn-kit-bench-") as folder:
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch")])
            NotebookClient(nb, timeout=300, kernel_name="python3", kernel_manager_class=SandboxedKernelManager,
                           resources={"metadata": {"path": folder}}, shutdown_kernel="immediate",
                           config=config).execute()

    runs = {"probes": (probe_run, ["bwrap, template", "bwrap, fresh", "limits only"] if template
                       else ["bwrap, fresh", "limits only"]),
            "kernel": (kernel_run, ["template", "fresh"] if template else ["fresh"])}
    if template:  # the template's own start (its imports) is paid once per process: not timed
        probe_run("bwrap, template")
    times = {(what, mode): [] for what, (_, modes) in runs.items() for mode in modes}
    for _ in range(repeats):
        for (what, mode), values in times.items():
            started = time.perf_counter()
            runs[what][0](mode)
            values.append(time.perf_counter() - started)
    medians = {f"{what}: {mode}": statistics.median(values) for (what, mode), values in times.items()}
    return {"median_seconds": medians, "extra_seconds": medians["probes: bwrap, fresh"] - medians["probes: limits only"],
            "runs": repeats}


def markdown(result: dict) -> str:
    lines = [f"Device: **{result['device']}**  ", f"Command: `{result['command']}`  ", f"Date: {result['date']}", ""]
    if result["recipe_vs_lecture"]:
        lines += ["| profile | grader recipe (s) | recipe accuracy | lecture pipeline: s to threshold | lecture accuracy "
                  "| lecture: share waiting for the DataLoader | threshold | ratio lecture/recipe |",
                  "|---|---|---|---|---|---|---|---|"]
    for row in result["recipe_vs_lecture"]:
        to_target = f"{row['lecture_seconds_to_target']:.1f}" if row["lecture_seconds_to_target"] else \
            f"not reached in {row['lecture_epochs']} epoch(s)"
        ratio = f"{row['ratio']:.1f}×" if row["ratio"] else "n/a"
        loading = f"{100 * row['lecture_loading_seconds'] / row['lecture_train_seconds']:.0f} %"
        lines.append(f"| {row['profile']} | {row['recipe_seconds']:.1f} | {row['recipe_accuracy']:.2f} % | {to_target} "
                     f"| {row['lecture_accuracy']:.2f} % | {loading} | {row['threshold']:.1f} % | {ratio} |")
    if result["grading"]:
        lines += ["", "| assignment | autograde total (s) | nbgrader: notebook run + gradebook | kit: set-up "
                  "| kit: sandbox + structure | kit: checks | kit: accuracy | feedback (s) "
                  "| peak RSS, largest process (MB) | score |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["grading"]:
        kit = row["kit_seconds"]
        accuracy = f"{kit['accuracy']:.1f}" if "accuracy" in kit else "none"
        nbgrader = row["autograde_seconds"] - sum(kit.values())
        lines.append(f"| {row['assignment']} | {row['autograde_seconds']:.1f} | {nbgrader:.1f} | {kit.get('set-up', 0):.2f} "
                     f"| {kit.get('sandbox', 0):.2f} | {kit.get('checks', 0):.2f} | {accuracy} "
                     f"| {row['feedback_seconds']:.1f} | {row['peak_rss_mb']:.0f} | {row['score']:g}/{row['points']:g} |")
    iso = result["isolation"]
    if "median_seconds" in iso:
        m = iso["median_seconds"]
        lines += ["", f"Isolation (median of {iso['runs']}, alternating; probes: assignment 1's; kernel: a one-cell "
                      "notebook, `import torch`): " + ", ".join(f"{what} {seconds:.2f} s" for what, seconds in m.items())
                  + f"; bubblewrap's extra over a plain subprocess {iso['extra_seconds']:+.2f} s per submission."]
    return "\n".join(lines)


SECTIONS = ("lecture", "grading", "isolation")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lecture-epochs", type=int, default=None,
                        help="cap on the lecture pipeline's epochs (default: 2 on CPU, 5 on GPU)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the per-submission timing (default 3)")
    parser.add_argument("--json", default="bench.json", help="where to write the raw results")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default all: {','.join(SECTIONS)})")
    parser.add_argument("--grade-one", nargs=3, metavar=("COURSE", "ASSIGNMENT", "STUDENT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.grade_one:
        _grade_one(*args.grade_one)
        return 0
    settings = Settings.build(os.environ, Path.cwd())  # this command is an edge: its settings from CNN_KIT_*, once
    sections = set(args.sections.split(","))
    if sections - set(SECTIONS):
        parser.error(f"unknown sections {sorted(sections - set(SECTIONS))}; valid: {','.join(SECTIONS)}")
    cuda = torch.cuda.is_available()
    recipes = mnist_profiles(settings) if "lecture" in sections else {}
    profiles = [recipes["cpu"]] + ([recipes["gpu"]] if cuda else []) if recipes else []
    result = {"device": device_name(), "command": "python -m autograder.bench " + " ".join(argv or sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d"), "recipe_vs_lecture": [], "grading": [],
              "isolation": {}}
    out = Path(args.json)

    def save(section: str) -> None:  # after every section: a cut-short run keeps what it measured
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"[bench] {section} done, saved to {out}", file=sys.stderr)

    for profile in profiles if "lecture" in sections else []:
        device = "cuda" if profile.name == "gpu" else "cpu"
        epochs = args.lecture_epochs or (5 if device == "cuda" else 2)
        print(f"[bench] recipe vs lecture, profile {profile.name}", file=sys.stderr)
        result["recipe_vs_lecture"].append(recipe_vs_lecture(profile, epochs, device, settings))
        save("recipe vs lecture")
    if "grading" in sections:
        print("[bench] grading one submission per assignment", file=sys.stderr)
        result["grading"] = grading_times(args.repeats, settings)
        save("grading")
    if "isolation" in sections:
        print("[bench] isolation", file=sys.stderr)
        result["isolation"] = isolation_cost(args.repeats, settings)
        save("isolation")
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
