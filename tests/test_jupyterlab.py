"""The release notebooks as a student sees them: JupyterLab in headless Chromium, the cells run from the top
(the self-check tools cell on the way) through a self-check, on a blank and on a mistaken answer (it fails with
the lecture's hint in a few lines, not PyTorch's traceback), the toolbar's Validate button (nbgrader's lab
extension) pressed (it saves the mistaken notebook; its result dialog shows the same hint), and the plots'
alternative text on the page. Screenshots are left in the test's temporary folder."""
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from autograder import paths
from autograder.assignment import release
from browser import Chromium, find_chromium, free_port, is_png, stop

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine")

# A student's environment made by release/student-setup.sh (its bin/python), to look at that install itself;
# by default the kit's own, with the student set-up's extensions turned off at the user's level.
STUDENT_PYTHON = os.environ.get("CNN_KIT_STUDENT_PYTHON")
A1 = ("a1_sizes_and_params", "sizes_and_params.ipynb")
A2 = ("a2_simplecnn_mnist", "simplecnn_mnist.ipynb")


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
        stop(server, timeout=20)
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


def run_from_top(browser, through: str, answer: dict[str, str] | None = None) -> dict[str, str]:
    """What a student does: set the answers' code, then run the notebook's code cells in order from the top
    through the cell with grade id `through` (the self-check tools cell on the way). Returns each run cell's
    output as shown, by grade id."""
    script = (f"const through = {json.dumps(through)}; const answer = {json.dumps(answer or {})};\n"
              "const last = index(through);\n") + """
      if (last < 0) throw new Error('no cell ' + through);
      const shown = {};
      for (let i = 0; i <= last; i++) {
        const cell = nb.widgets[i];
        if (cell.model.type !== 'code') continue;
        const id = (cell.model.getMetadata('nbgrader') || {}).grade_id || ('cell ' + i);
        if (id in answer) cell.model.sharedModel.setSource(answer[id]);
        nb.activeCellIndex = i;
        await window.jupyterapp.commands.execute('notebook:run-cell');
        shown[id] = cell.outputArea.node.innerText;
      }
      await new Promise(r => setTimeout(r, 300));
      const output = nb.widgets[last].outputArea.node;
      output.scrollIntoView({block: 'end'});  // its last lines (the failure) in the screenshot
      await new Promise(r => setTimeout(r, 300));
      shown[Object.keys(shown).pop()] = output.innerText;
      return shown;"""
    return call(browser, script)


def no_error_before(shown: dict[str, str], answer_id: str) -> None:
    """The cells above the answer (imports, the self-check tools) ran without an error."""
    for grade_id, text in shown.items():
        if grade_id == answer_id:
            return
        assert "Error" not in text and "Traceback" not in text, f"{grade_id} raised: {text}"


def short_hint(text: str, hint: str) -> None:
    """The self-check shows `hint` in a few lines, not the traceback of PyTorch's layers."""
    assert hint in " ".join(text.split()), text
    assert "torch/nn/modules" not in text and "NameError" not in text, text
    assert len(text.splitlines()) <= 40, f"{len(text.splitlines())} lines:\n{text}"


def validate(browser, shot) -> str:
    """Press the toolbar's Validate button and return the text of nbgrader's result dialog."""
    call(browser, "panel.toolbar.node.querySelector('.validate-button').click(); "
                  "return true;")
    text = wait_for(browser, "(d => d && !/Validating/.test(d.innerText) && d.innerText)"
                             "(document.querySelector('.jp-Dialog'))", seconds=150, what="Validate's dialog")
    browser.evaluate("(b => b && (b.scrollTop = b.scrollHeight))(document.querySelector('.jp-Dialog-body'))")
    browser.screenshot(shot, height=1000)  # the end of the report: the failure's message
    browser.evaluate("document.querySelector('.jp-Dialog .jp-mod-accept, .jp-Dialog button').click()")
    return text


def test_a1_self_check_fails_on_a_blank_and_a_mistaken_answer_and_validate_says_so(lab, browser, tmp_path):
    open_notebook(browser, lab, A1[1])
    shown = call(browser, "return {validate: !!panel.toolbar.node.querySelector('.validate-button'), "
                          "page: document.body.innerText};")
    assert shown["validate"], "the toolbar has no Validate button"
    assert "Create Assignment" not in shown["page"] and "Formgrader" not in shown["page"], "instructor tools shown"
    outputs = run_from_top(browser, "conv2d_out_selfcheck")
    browser.screenshot(tmp_path / "a1-blank-self-check.png", height=1000)
    no_error_before(outputs, "conv2d_out_answer")
    blank = outputs["conv2d_out_selfcheck"]
    assert "NotImplementedError" in blank and "output-size formula" in blank, blank
    # The formula without padding: the lecture's first example passes, the padded one does not.
    no_padding = "def conv2d_out(h_in, w_in, k=3, s=1, p=0, d=1):\n    return (h_in - k) // s + 1, (w_in - k) // s + 1\n"
    mistaken = run_from_top(browser, "conv2d_out_selfcheck", {"conv2d_out_answer": no_padding})
    browser.screenshot(tmp_path / "a1-no-padding-self-check.png", height=1000)
    short_hint(mistaken["conv2d_out_selfcheck"], "padding=1 keeps 28x28 for a 3x3 kernel")
    # The special case the notebook shows (no dilation): every example passes but the dilated one.
    no_dilation = ("def conv2d_out(h_in, w_in, k=3, s=1, p=0, d=1):\n"
                   "    return (h_in + 2 * p - k) // s + 1, (w_in + 2 * p - k) // s + 1\n")
    mistaken = run_from_top(browser, "conv2d_out_selfcheck", {"conv2d_out_answer": no_dilation})
    assert is_png(browser.screenshot(tmp_path / "a1-no-dilation-self-check.png", height=1000))
    short_hint(mistaken["conv2d_out_selfcheck"], "dilation d=2 spreads a 3x3 kernel over d*(k-1)+1 = 5 pixels")
    dialog = validate(browser, tmp_path / "a1-validate.png")  # the button saves the notebook first
    assert "failed" in dialog.lower(), dialog
    assert "formula, not the special case d=1" in " ".join(dialog.split()), dialog
    assert is_png(tmp_path / "a1-validate.png")


NO_FLATTEN = (
    "class SimpleCNN(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.features = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),\n"
    "                                      nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))\n"
    "        self.classifier = nn.Sequential(nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))\n\n"
    "    def forward(self, x):\n        return self.classifier(self.features(x))\n")
FLATTEN_HINT = "Did you flatten before the first Linear? nn.Flatten() turns each 64 × 7 × 7 block"


def test_a2_self_check_fails_on_a_blank_and_on_a_missing_flatten_and_validate_says_so(lab, browser, tmp_path):
    open_notebook(browser, lab, A2[1])
    outputs = run_from_top(browser, "simplecnn_selfcheck")
    browser.screenshot(tmp_path / "a2-blank-self-check.png", height=1000)
    no_error_before(outputs, "simplecnn_answer")
    short_hint(outputs["simplecnn_selfcheck"], "two images in should give 2 × 10 logits, got (2, 1, 28, 28)")
    mistaken = run_from_top(browser, "simplecnn_selfcheck", {"simplecnn_answer": NO_FLATTEN})
    assert is_png(browser.screenshot(tmp_path / "a2-missing-flatten.png", height=1000))
    short_hint(mistaken["simplecnn_selfcheck"], FLATTEN_HINT)
    dialog = validate(browser, tmp_path / "a2-validate.png")  # the button saves the notebook first
    assert "failed" in dialog.lower(), dialog
    assert FLATTEN_HINT in " ".join(dialog.split()), dialog


def test_the_plots_alternative_text_reaches_jupyterlab(lab, browser, tmp_path):
    open_notebook(browser, lab, "solution.ipynb")
    alts = wait_for(browser, "(a => a.length >= 4 && a)([...document.querySelectorAll('.jp-OutputArea img')]"
                             ".filter(i => i.complete && i.naturalWidth > 0).map(i => i.alt))", what="four plots")
    browser.evaluate("document.querySelector('.jp-OutputArea img').scrollIntoView()")
    browser.screenshot(tmp_path / "a2-plots.png", height=1000)
    assert all(alts) and any("Mean training loss" in alt for alt in alts), alts
