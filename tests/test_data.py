"""Tests for autograder.data: finding, verifying, staging and loading MNIST (offline)."""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from autograder import data
from autograder.data import (
    CACHE_VAR,
    FILES,
    MNIST_DIR_VAR,
    MNISTCorrupt,
    MNISTNotFound,
    cache_root,
    describe_source,
    load_mnist,
    stage,
    stage_mnist,
)
from autograder.settings import Settings

# Read before any test clears the variable.
_ENV_SOURCE = os.environ.get(MNIST_DIR_VAR)
_SHARED = Path(__file__).resolve().parents[1].parent / "shared/data/mnist"


def _raw(root: Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the user's cache or a CNN_KIT_MNIST from the outside."""
    cache = tmp_path / "kit-cache"
    monkeypatch.setenv(CACHE_VAR, str(cache))
    monkeypatch.delenv(MNIST_DIR_VAR, raising=False)
    return cache


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST source directory (.gz files), or skip."""
    for candidate in (_ENV_SOURCE, _SHARED):
        if candidate and all(
            (Path(candidate) / n).is_file() or (Path(candidate) / f"{n}.gz").is_file() for n in FILES
        ):
            return Path(candidate)
    pytest.skip(f"MNIST not found: {MNIST_DIR_VAR} unset or incomplete and no copy at {_SHARED}")


@pytest.fixture(scope="session")
def staged(mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root staged once from the real data (decompressed files under MNIST/raw)."""
    return stage_mnist(mnist_dir, tmp_path_factory.mktemp("staged"), download=False)


def _source_with(tmp_path: Path, staged: Path, replace: dict[str, bytes]) -> Path:
    """A source dir: symlinks to the real decompressed files, except ``replace`` (file name -> bytes)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in FILES:
        if not any(k in (name, f"{name}.gz") for k in replace):
            (src / name).symlink_to(_raw(staged) / name)
    for fname, content in replace.items():
        (src / fname).write_bytes(content)
    return src


def test_files_match_the_shipped_sha256sums(mnist_dir: Path) -> None:
    sums = mnist_dir / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip(f"no SHA256SUMS in {mnist_dir}")
    listed = {name: digest for digest, name in (line.split() for line in sums.read_text().splitlines() if line)}
    assert listed == FILES


def test_cache_root_env_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_root() == tmp_path / "kit-cache"
    monkeypatch.delenv(CACHE_VAR)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "cnn-kit"


def test_staging_gives_torchvision_layout_loading_offline(
    mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision

    root = stage_mnist(mnist_dir, tmp_path / "root", download=False)
    assert root == tmp_path / "root"
    raw = _raw(root)
    assert sorted(p.name for p in raw.iterdir() if not p.name.startswith(".")) == sorted(FILES)
    assert not list(raw.glob(".*.part")), "temporary files left behind"
    for name, digest in FILES.items():
        assert _sha(raw / name) == digest

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("torchvision tried to download")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    ds = torchvision.datasets.MNIST(str(root), train=False, download=True)
    assert len(ds) == 10000
    images, labels = load_mnist(False, root)
    assert torch.equal(ds.data, images)
    assert torch.equal(ds.targets, labels)


@pytest.mark.parametrize(("train", "n"), [(True, 60000), (False, 10000)])
def test_load_mnist_shapes_dtypes_labels(staged: Path, train: bool, n: int) -> None:
    images, labels = load_mnist(train, staged)
    assert images.shape == (n, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (n,) and labels.dtype == torch.int64
    assert int(labels.min()) == 0 and int(labels.max()) == 9
    assert int(images.max()) == 255 and int(images.min()) == 0
    counts = torch.bincount(labels, minlength=10)
    assert counts.shape == (10,) and bool((counts > 0).all())
    assert int(counts.sum()) == n
    again = load_mnist(train, staged)
    assert again[0] is images and again[1] is labels, "not memoised"


def test_load_mnist_from_stage_stages_into_cache(
    mnist_dir: Path, _isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MNIST_DIR_VAR, str(mnist_dir))
    images, labels = load_mnist(False, stage(Settings.build()))  # the test is the edge: settings from its env
    assert images.shape == (10000, 28, 28) and labels.shape == (10000,)
    for name, digest in FILES.items():
        assert _sha(_raw(_isolated_env) / name) == digest


def test_valid_cache_is_used_without_a_source(staged: Path, _isolated_env: Path) -> None:
    stage_mnist(_raw(staged), download=False)  # fill the kit cache from decompressed files
    assert stage_mnist(download=False) == _isolated_env
    assert "kit cache" in describe_source(Settings.build())


def test_restaging_an_unchanged_source_is_skipped(staged: Path, tmp_path: Path) -> None:
    root = stage_mnist(_raw(staged), tmp_path / "root", download=False)
    before = {n: (_raw(root) / n).stat().st_mtime_ns for n in FILES}
    stage_mnist(_raw(staged), root, download=False)
    assert {n: (_raw(root) / n).stat().st_mtime_ns for n in FILES} == before


def test_restaging_from_another_source_verifies_it(staged: Path, tmp_path: Path) -> None:
    name = "t10k-labels-idx1-ubyte"
    first = _source_with(tmp_path, staged, {f"{name}.gz": gzip.compress((_raw(staged) / name).read_bytes())})
    root = stage_mnist(first, tmp_path / "root", download=False)
    other = tmp_path / "other"
    other.mkdir()
    for p in first.iterdir():  # same files, but the .gz now sits under the decompressed name
        (other / p.name.removesuffix(".gz")).symlink_to(p)
    with pytest.raises(MNISTCorrupt, match=f"{name}: checksum"):
        stage_mnist(other, root, download=False)
    assert _sha(_raw(root) / name) == FILES[name]


def test_mixed_gz_and_decompressed_source(mnist_dir: Path, staged: Path, tmp_path: Path) -> None:
    src = tmp_path / "mixed"
    src.mkdir()
    names = list(FILES)
    for name in names[:2]:
        (src / name).symlink_to(_raw(staged) / name)
    for name in names[2:]:
        gz = mnist_dir / f"{name}.gz"
        (src / gz.name).symlink_to(gz if gz.is_file() else _raw(staged) / name)
    root = stage_mnist(src, tmp_path / "root", download=False)
    assert all(_sha(_raw(root) / n) == d for n, d in FILES.items())


def test_env_var_takes_precedence_over_valid_cache(
    staged: Path, tmp_path: Path, _isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage_mnist(_raw(staged), download=False)  # a valid kit cache
    bad = _source_with(tmp_path, staged, {"t10k-labels-idx1-ubyte": b"not mnist"})
    monkeypatch.setenv(MNIST_DIR_VAR, str(bad))
    assert str(bad) in describe_source(Settings.build())
    with pytest.raises(MNISTCorrupt, match="t10k-labels-idx1-ubyte"):
        stage_mnist(download=False)
    monkeypatch.setenv(MNIST_DIR_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(MNISTNotFound, match="no such directory"):
        stage_mnist(download=False)


def test_explicit_source_takes_precedence_over_env_var(
    staged: Path, tmp_path: Path, _isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MNIST_DIR_VAR, str(tmp_path / "nowhere"))
    assert stage_mnist(_raw(staged), download=False) == _isolated_env
    assert all(_sha(_raw(_isolated_env) / n) == d for n, d in FILES.items())
    # and an invalid explicit source is an error even though env var and cache are fine
    monkeypatch.setenv(MNIST_DIR_VAR, str(_raw(staged)))
    with pytest.raises(MNISTNotFound, match="no such directory"):
        stage_mnist(tmp_path / "nowhere", download=False)


def test_truncated_gz_is_corrupt_and_named(mnist_dir: Path, staged: Path, tmp_path: Path) -> None:
    gz = mnist_dir / "t10k-images-idx3-ubyte.gz"
    if not gz.is_file():
        pytest.skip(f"{gz} not present (source holds decompressed files)")
    whole = gz.read_bytes()
    src = _source_with(tmp_path, staged, {gz.name: whole[: len(whole) // 2]})
    with pytest.raises(MNISTCorrupt) as info:
        stage_mnist(src, tmp_path / "root", download=False)
    msg = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "truncated" in msg
    assert info.value.__context__ is None
    raw = _raw(tmp_path / "root")
    assert not (raw / "t10k-images-idx3-ubyte").exists()
    assert not list(raw.glob(".*.part"))


def test_valid_gzip_wrong_content_is_a_checksum_error(staged: Path, tmp_path: Path) -> None:
    name = "t10k-labels-idx1-ubyte"
    content = bytearray((_raw(staged) / name).read_bytes())
    content[-1] = (content[-1] + 1) % 10  # still a valid IDX file, one label changed
    src = _source_with(tmp_path, staged, {f"{name}.gz": gzip.compress(bytes(content))})
    with pytest.raises(MNISTCorrupt) as info:
        stage_mnist(src, tmp_path / "root", download=False)
    msg = str(info.value)
    assert f"{name}.gz" in msg and "checksum" in msg
    assert FILES[name] in msg and hashlib.sha256(content).hexdigest() in msg


def test_missing_file_is_named(staged: Path, tmp_path: Path) -> None:
    src = _source_with(tmp_path, staged, {})
    (src / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(MNISTCorrupt) as info:
        stage_mnist(src, tmp_path / "root", download=False)
    assert "train-labels-idx1-ubyte" in str(info.value) and "missing" in str(info.value)
    assert "t10k-images-idx3-ubyte" not in str(info.value)


def test_nothing_available_names_files_and_env_var(_isolated_env: Path) -> None:
    with pytest.raises(MNISTNotFound) as info:
        stage_mnist(download=False)
    msg = str(info.value)
    for name in FILES:
        assert name in msg
    assert f"{MNIST_DIR_VAR}=" in msg and "--mnist" in msg
    assert str(_raw(_isolated_env)) in msg and "download=False" in msg
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert "not in the kit cache" in describe_source(Settings.build())


def test_failed_download_becomes_not_found(
    _isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(MNISTNotFound) as info:
        stage_mnist(download=True)
    msg = str(info.value)
    assert "torchvision download: failed" in msg and "offline (test)" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert not list(_raw(_isolated_env).iterdir()), "download left files behind"


def test_valid_staged_copy_survives_failed_restage(staged: Path, tmp_path: Path) -> None:
    root = stage_mnist(_raw(staged), tmp_path / "root", download=False)
    name = "train-images-idx3-ubyte"
    bad = bytearray((_raw(staged) / name).read_bytes()[:1000])
    src = _source_with(tmp_path, staged, {name: bytes(bad)})
    with pytest.raises(MNISTCorrupt, match=name):
        stage_mnist(src, root, download=False)
    for n, digest in FILES.items():
        assert _sha(_raw(root) / n) == digest
    assert not list(_raw(root).glob(".*.part"))
    assert stage_mnist(root=root, download=False) == root  # the cache is still valid
    assert load_mnist(True, root)[0].shape == (60000, 28, 28)


def test_idx_header_is_validated(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    raw.mkdir(parents=True)
    labels = (0x0801).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes([1, 2, 3])
    images = (0x0803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (3, 28, 28))
    (raw / "t10k-labels-idx1-ubyte").write_bytes(labels)
    (raw / "t10k-images-idx3-ubyte").write_bytes(images + bytes(3 * 28 * 28))
    x, y = load_mnist(False, tmp_path)  # small fake files parse fine
    assert x.shape == (3, 28, 28) and y.tolist() == [1, 2, 3]
    data._load.cache_clear()
    (raw / "t10k-images-idx3-ubyte").write_bytes(images + bytes(10))
    with pytest.raises(MNISTCorrupt, match="IDX header says"):
        load_mnist(False, tmp_path)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + images[4:] + bytes(3 * 28 * 28))
    with pytest.raises(MNISTCorrupt, match="IDX magic"):
        load_mnist(False, tmp_path)


def test_the_student_package_needs_nothing_of_the_grader() -> None:
    """What a notebook imports (staging, the hidden cells' call) loads no grader module and no torch."""
    import subprocess
    import sys

    code = ("import sys, autograder.student.data, autograder.student.cells\n"
            "kit = sorted(m for m in sys.modules if m.startswith('autograder') and "
            "not m.startswith('autograder.student') and m != 'autograder')\n"
            "print(kit, 'torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[] False", run.stdout
    assert data.stage_mnist.__module__ == "autograder.student.data"
