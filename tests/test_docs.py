"""The documentation: the README stays short, the MkDocs site builds strictly, every relative link resolves,
and ARCHITECTURE.md names every module of the grader and only modules that exist."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parents[1]
README_LIMIT = 12_800  # bytes: about 12 KB (issue 24); the rest belongs in docs/
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _markdown_files() -> list[Path]:
    return [KIT / "README.md", KIT / "ARCHITECTURE.md", KIT / "BENCHMARKS.md", *sorted((KIT / "docs").glob("**/*.md"))]


def _relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # code blocks hold no links
    return [target for target in LINK.findall(text)
            if not re.match(r"[a-z][a-z0-9+.-]*:", target) and not target.startswith("#")]


def test_the_readme_is_short():
    size = len((KIT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size} bytes, over {README_LIMIT}: move detail to docs/"


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(KIT)))
def test_every_relative_link_resolves(page):
    broken = [target for target in _relative_links(page)
              if not (page.parent / target.split("#")[0]).exists()]
    assert not broken, f"{page.relative_to(KIT)} links to what does not exist: {broken}"


def test_the_site_builds_strictly(tmp_path):
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                          str(KIT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
                         cwd=KIT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    benchmarks = (tmp_path / "site" / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert "Accuracy spread" in benchmarks, "the benchmarks page includes BENCHMARKS.md"


def _named_paths(text: str) -> set[str]:
    return set(re.findall(r"`(autograder/[\w/.]*)`", text))


def test_architecture_names_only_what_exists():
    named = _named_paths((KIT / "ARCHITECTURE.md").read_text(encoding="utf-8"))
    missing = sorted(path for path in named if not (KIT / path).exists())
    assert not missing, f"ARCHITECTURE.md names what is not in the code: {missing}"


def test_architecture_names_every_module():
    named = _named_paths((KIT / "ARCHITECTURE.md").read_text(encoding="utf-8"))
    folders = {path for path in named if path.endswith("/")}
    unnamed = []
    for module in sorted((KIT / "autograder").glob("**/*.py")):
        path = str(module.relative_to(KIT))
        if path not in named and not any(path.startswith(folder) for folder in folders):
            unnamed.append(path)
    assert not unnamed, f"ARCHITECTURE.md does not say what these modules are for: {unnamed}"
