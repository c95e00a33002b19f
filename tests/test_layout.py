"""The code's shape (issue 24): small modules, short functions or a reason, no folder name joined outside Course."""
import ast
import re
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
MODULES = sorted((KIT / "autograder").rglob("*.py"))


def test_no_module_over_350_lines():
    long = {str(p.relative_to(KIT)): n for p in MODULES if (n := len(p.read_text().splitlines())) > 350}
    assert not long, f"split these modules by job: {long}"


def test_a_function_over_50_lines_says_why():
    unexplained = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 50:
                if "50 lines" not in (ast.get_docstring(node) or ""):
                    unexplained.append(f"{path.relative_to(KIT)}:{node.lineno} {node.name}")
    assert not unexplained, f"split these, or say in the docstring why over 50 lines: {unexplained}"


def test_course_folder_names_are_written_only_in_course_folder():
    joined = re.compile(r'/ "(submitted|autograded|feedback|gradebook\.db|reports|accuracy-cache)"')
    found = [f"{p.relative_to(KIT)}:{n}" for p in MODULES if p.name != "folder.py"
             for n, line in enumerate(p.read_text().splitlines(), 1) if joined.search(line)]
    assert not found, f"ask autograder.course.folder.Course for these paths: {found}"
