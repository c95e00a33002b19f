"""scripts/gpu-check, the one prepared script for a lent GPU machine, runs its steps on the CPU (--dry-run)."""
import json
import os
import subprocess
import sys
from pathlib import Path

from autograder import paths

SCRIPT = paths.KIT / "scripts" / "gpu-check"


def test_the_dry_run_calibrates_benches_and_tests_in_seconds(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run([str(SCRIPT), "--dry-run"], env=env, capture_output=True, text=True, timeout=300)
    summary = (tmp_path / "summary.txt").read_text()
    assert done.returncode == 0, done.stderr + summary
    for step in ("calibration", "bench", "gpu-tests"):
        assert f"{step}: ok" in summary, summary + (tmp_path / "log.txt").read_text()[-3000:]
    calibration = json.loads((tmp_path / "calibration-cpu.json").read_text())
    assert calibration["seeds"] == [0, 1] and "threshold" in calibration
    assert json.loads((tmp_path / "bench.json").read_text())["recipe_vs_lecture"]
    assert "skipped" in (tmp_path / "tests.txt").read_text(), "the gpu tests say why they skip on a CPU"


def test_the_device_run_refuses_to_start_without_the_carried_wheels(tmp_path):
    if (paths.KIT / ".gpu-check" / "wheels").is_dir():
        return  # filled here: the device run would install (not on this machine's Python)
    done = subprocess.run([str(SCRIPT)], env={**os.environ, "OUT": str(tmp_path)}, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and "--fill" in done.stderr
