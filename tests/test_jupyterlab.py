"""The release notebooks as a student sees them: JupyterLab in headless Chromium, a self-check run on a
blank and on a mistaken answer (it fails, with its message on the page), the toolbar's Validate button
(nbgrader's lab extension) pressed (its result dialog says the blank notebook fails), and the plots'
alternative text on the page. Screenshots are left in the test's temporary folder."""
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from autograder import paths
from autograder.assignment import release
from browser import Chromium, find_chromium, is_png

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine")

# A student's environment made by release/student-setup.sh (its bin/python), to look at that install itself;
# by default the kit's own, with the student set-up's extensions turned off at the user's level.
STUDENT_PYTHON = os.environ.get("CNN_KIT_STUDENT_PYTHON")
A1 = ("a1_sizes_and_params", "sizes_and_params.ipynb")
A2 = ("a2_simplecnn_mnist", "simplecnn_mnist.ipynb")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a loopback port with a token, in a folder holding the release notebooks (and a2's solution,
    for its plots), with its own settings, and `window.jupyterapp` exposed so the test can drive it."""
    root = tmp_path_factory.mktemp("lab")
    folder = root / "notebooks"
    folder.mkdir()
    for assignment, name in (A1, A2):
        shutil.copy(paths.RELEASE / assignment / name, folder / name)
    shutil.copy(paths.SOLUTIONS / A2[0] / A2[1], folder / "solution.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    home = root / "home"
    # A student's set-up (release/student-setup.sh): nbgrader's instructor extensions off, here at the user's
    # level (the kit's own environment keeps them); and no news pop-up over the page.
    (home / "config" / "labconfig").mkdir(parents=True)
    disabled = ["@jupyterlab/apputils-extension:announcements"]
    if not STUDENT_PYTHON:
        disabled += release.INSTRUCTOR_LAB_EXTENSIONS
        (home / "config" / "jupyter_server_config.json").write_text(json.dumps(
            {"ServerApp": {"jpserver_extensions": {name: False for name in release.INSTRUCTOR_SERVER_EXTENSIONS}}}))
    (home / "config" / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {name: True for name in disabled}}))
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    if STUDENT_PYTHON:  # nothing of the kit in a student's kernel
        env.pop("PYTHONPATH", None)
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [STUDENT_PYTHON or sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
         "--LabApp.expose_app_in_browser=True",
         "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as response:
                json.load(response)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start: {(root / 'jupyterlab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    try:
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    with Chromium(CHROMIUM, width=1400, height=1000, timeout=90) as chromium:
        yield chromium


def call(browser, script: str, timeout: float = 120):
    """Evaluate an async function body in the page, with the notebook panel as `panel`, and return its value."""
    expression = ("(async () => { const panel = [...window.jupyterapp.shell.widgets('main')]"
                  ".find(w => w.context && w.context.path === window.cnnKitPath); const nb = panel.content;\n"
                  "const index = id => nb.widgets.findIndex(\n"
                  "  c => (c.model.getMetadata('nbgrader') || {}).grade_id === id);\n"
                  f"{script} }})()")
    result = browser.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True,
                                               "timeout": int(timeout * 1000)})
    if "exceptionDetails" in result:
        raise RuntimeError(f"in the page: {result['exceptionDetails']}")
    return result["result"].get("value")


def wait_for(browser, expression: str, seconds: float = 90, what: str = ""):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = browser.evaluate(f"(() => {{ try {{ return {expression}; }} catch (e) {{ return null; }} }})()")
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"not seen in {seconds} s: {what or expression}")


def open_notebook(browser, lab, name: str) -> None:
    base, token = lab
    browser.open(f"{base}/lab/tree/{name}?token={token}", settle=0.5)
    browser.evaluate(f"window.cnnKitPath = {json.dumps(name)}")
    wait_for(browser, "[...window.jupyterapp.shell.widgets('main')].find(w => w.context && w.context.path === "
                      "window.cnnKitPath).content.widgets.length > 0", what=f"{name} open")
    call(browser, "await panel.sessionContext.ready; return true;")


def run_cells(browser, grade_ids: list[str], answer: dict[str, str] | None = None) -> str:
    """Set the answers' code, run the cells with these grade ids in order, and return the last one's text as shown."""
    script = f"const ids = {json.dumps(grade_ids)}; const answer = {json.dumps(answer or {})};\n" + """
      for (const id of ids) {
        const i = index(id);
        if (i < 0) throw new Error('no cell ' + id);
        if (id in answer) nb.widgets[i].model.sharedModel.setSource(answer[id]);
        nb.activeCellIndex = i;
        await window.jupyterapp.commands.execute('notebook:run-cell');
      }
      await new Promise(r => setTimeout(r, 300));
      const output = nb.widgets[index(ids[ids.length - 1])].outputArea.node;
      output.scrollIntoView({block: 'end'});  // its last lines (the failure) in the screenshot
      await new Promise(r => setTimeout(r, 300));
      return output.innerText;"""
    return call(browser, script)


def validate(browser, shot) -> str:
    """Press the toolbar's Validate button and return the text of nbgrader's result dialog."""
    call(browser, "panel.toolbar.node.querySelector('.validate-button').click(); "
                  "return true;")
    text = wait_for(browser, "(d => d && !/Validating/.test(d.innerText) && d.innerText)"
                             "(document.querySelector('.jp-Dialog'))", seconds=150, what="Validate's dialog")
    browser.screenshot(shot, height=1000)
    browser.evaluate("document.querySelector('.jp-Dialog .jp-mod-accept, .jp-Dialog button').click()")
    return text


def test_a1_self_check_fails_on_a_blank_and_a_mistaken_answer_and_validate_says_so(lab, browser, tmp_path):
    open_notebook(browser, lab, A1[1])
    shown = call(browser, "return {validate: !!panel.toolbar.node.querySelector('.validate-button'), "
                          "page: document.body.innerText};")
    assert shown["validate"], "the toolbar has no Validate button"
    assert "Create Assignment" not in shown["page"] and "Formgrader" not in shown["page"], "instructor tools shown"
    blank = run_cells(browser, ["setup_imports", "conv2d_out_answer", "conv2d_out_selfcheck"])
    assert "NotImplementedError" in blank and "output-size formula" in blank, blank
    browser.screenshot(tmp_path / "a1-blank-self-check.png", height=1000)
    # The formula without padding: the lecture's first example passes, the padded one does not.
    mistaken = run_cells(browser, ["conv2d_out_answer", "conv2d_out_selfcheck"], {"conv2d_out_answer": (
        "def conv2d_out(h_in, w_in, k=3, s=1, p=0, d=1):\n    return (h_in - k) // s + 1, (w_in - k) // s + 1\n")})
    assert "Error" in mistaken and "padding" in mistaken, mistaken
    assert is_png(browser.screenshot(tmp_path / "a1-mistaken-self-check.png", height=1000))
    dialog = validate(browser, tmp_path / "a1-validate.png")
    assert "failed" in dialog.lower(), dialog
    assert is_png(tmp_path / "a1-validate.png")


def test_a2_self_check_fails_on_a_blank_and_on_a_missing_flatten_and_validate_says_so(lab, browser, tmp_path):
    open_notebook(browser, lab, A2[1])
    blank = run_cells(browser, ["setup_imports", "simplecnn_answer", "simplecnn_selfcheck"])
    assert "Error" in blank and "64" in blank and "7" in blank, blank
    browser.screenshot(tmp_path / "a2-blank-self-check.png", height=1000)
    no_flatten = (
        "class SimpleCNN(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.features = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),\n"
        "                                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))\n"
        "        self.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))\n\n"
        "    def forward(self, x):\n        return self.classifier(self.features(x))\n")
    mistaken = run_cells(browser, ["simplecnn_answer", "simplecnn_selfcheck"], {"simplecnn_answer": no_flatten})
    assert "Error" in mistaken and ("flatten" in mistaken.lower() or "mat1 and mat2" in mistaken), mistaken
    assert is_png(browser.screenshot(tmp_path / "a2-missing-flatten.png", height=1000))
    dialog = validate(browser, tmp_path / "a2-validate.png")
    assert "failed" in dialog.lower(), dialog


def test_the_plots_alternative_text_reaches_jupyterlab(lab, browser, tmp_path):
    open_notebook(browser, lab, "solution.ipynb")
    alts = wait_for(browser, "(a => a.length >= 4 && a)([...document.querySelectorAll('.jp-OutputArea img')]"
                             ".filter(i => i.complete && i.naturalWidth > 0).map(i => i.alt))", what="four plots")
    browser.evaluate("document.querySelector('.jp-OutputArea img').scrollIntoView()")
    browser.screenshot(tmp_path / "a2-plots.png", height=1000)
    assert all(alts) and any("Mean training loss" in alt for alt in alts), alts
