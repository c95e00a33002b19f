"""Headless Chromium over the DevTools protocol, for tests that look at pages as a person would.

`chromium --headless --dump-dom` shows the DOM but not what went wrong while loading it; the DevTools
protocol (over a WebSocket: websocket-client, which jupyter_server already installs) reports script
exceptions, console errors and failed loads, evaluates checks in the page and takes screenshots.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

def free_port() -> int:
    """A TCP port free on loopback now (for a test's own server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float) -> None:
    """End a test's server or browser: SIGTERM, then SIGKILL after `timeout` seconds; waited for."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# What a page reports about itself: headings, tables, images (loaded or not), links, in-page links
# whose target is missing (raw or percent-decoded id, or an <a name>; "#top" is the page's top by the
# HTML standard), and how many scripts it has.
INSPECT = """(() => {
  const ids = new Set([...document.querySelectorAll('[id]')].map(e => e.id));
  for (const a of document.querySelectorAll('a[name]')) ids.add(a.name);
  const broken = [];
  for (const a of document.querySelectorAll('a[href^="#"]')) {
    const raw = a.getAttribute('href').slice(1);
    let decoded = raw; try { decoded = decodeURIComponent(raw); } catch (e) {}
    if (raw && raw.toLowerCase() !== 'top' && !ids.has(raw) && !ids.has(decoded)) broken.push(a.getAttribute('href'));
  }
  return {
    title: document.title,
    headings: [...document.querySelectorAll('h1, h2, h3, h4')].map(h => h.textContent.trim()),
    ids: [...ids],
    tables: document.querySelectorAll('table').length,
    images: [...document.images].map(i => ({src: i.src.slice(0, 40), alt: i.alt, loaded: i.complete && i.naturalWidth > 0})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    broken_anchors: broken,
    scripts: document.scripts.length,
    text: document.body.innerText,
    height: document.documentElement.scrollHeight,
  };
})()"""


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, BINARIES) if path), None)


@dataclass
class PageReport:
    url: str
    info: dict
    exceptions: list[str] = field(default_factory=list)      # uncaught script errors
    console_errors: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)   # (url, why) of loads that failed
    console: list[str] = field(default_factory=list)          # every console call and log entry, any level
    blocked: list[str] = field(default_factory=list)          # requests the page's Content-Security-Policy refused

    def broken_local_links(self) -> list[str]:
        """file:// links whose file does not exist."""
        missing = []
        for link in self.info["links"]:
            parsed = urlparse(link)
            if parsed.scheme == "file" and not Path(unquote(parsed.path)).exists():
                missing.append(link)
        return missing

    def external_requests(self) -> list[str]:
        return [url for url in self.requested if urlparse(url).scheme in ("http", "https")]

    requested: list[str] = field(default_factory=list)


class Chromium:
    """One headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, binary: str, width: int = 1200, height: int = 2000, timeout: float = 60):
        import websocket

        self.timeout = timeout
        self.width = width
        self.profile = tempfile.mkdtemp(prefix="cnn-kit-chromium-")
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("Chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split("\n")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as response:
            pages = [t for t in json.load(response) if t.get("type") == "page"]
        self.socket = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=timeout,
                                                  suppress_origin=True)
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def send(self, method: str, params: dict | None = None) -> dict:
        message_id = next(self.ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def _wait_for(self, method: str, since: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(e.get("method") == method for e in self.events[since:]):
                return True
            self.socket.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                self.events.append(json.loads(self.socket.recv()))
            except Exception:  # a receive timeout: look again
                pass
            finally:
                self.socket.settimeout(self.timeout)
        return False

    def open(self, url: str, settle: float = 1.0) -> PageReport:
        """Load `url`, wait for its load event and `settle` seconds more, and report what happened."""
        start = len(self.events)
        self.send("Page.navigate", {"url": url})
        if not self._wait_for("Page.loadEventFired", start, self.timeout):
            raise RuntimeError(f"{url} did not finish loading in {self.timeout} s")
        self._wait_for("never", start, settle)  # late errors and failed loads
        info = self.evaluate(INSPECT)
        report = PageReport(url, info)
        urls = {}
        for event in self.events[start:]:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                urls[params["requestId"]] = params["request"]["url"]
                report.requested.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                report.failed.append((urls.get(params["requestId"], "?"), params.get("errorText", "")))
                if params.get("blockedReason") == "csp":  # refused by the page's policy: it never left the browser
                    report.blocked.append(urls.get(params["requestId"], "?"))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                report.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                report.console.append(text)
                if params.get("type") == "error":
                    report.console_errors.append(text)
            elif method == "Log.entryAdded":
                entry = params["entry"]
                text = f"{entry.get('text', '')} {entry.get('url', '')}".strip()
                report.console.append(text)
                if entry.get("level") == "error":
                    report.console_errors.append(text)
        return report

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluation failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, seconds: float = 30) -> object:
        """The value of `expression` once it is truthy in the page; RuntimeError after `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise RuntimeError(f"not true after {seconds} s: {expression}")

    def click(self, selector: str) -> None:
        """A mouse click at the middle of the first element `selector` finds, as a person clicks it."""
        box = self.evaluate(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect();
            return {{x: r.x + r.width / 2, y: r.y + r.height / 2}}; }})()""")
        if box is None:
            raise RuntimeError(f"nothing in the page matches {selector!r}")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"], "button": "left",
                                                   "clickCount": 1})

    def type_text(self, text: str) -> None:
        """Typed into the focused element, as the keyboard would (input events included)."""
        self.send("Input.insertText", {"text": text})

    KEYS = {"Tab": 9, "Enter": 13, "Escape": 27}

    def press(self, key: str) -> None:
        """A key pressed and released: 'Tab', 'Enter' or 'Escape'."""
        code = self.KEYS[key]
        for kind in ("rawKeyDown", "keyUp"):
            self.send("Input.dispatchKeyEvent", {"type": kind, "key": key, "code": key,
                                                 "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code})

    def screenshot(self, path: Path, height: int | None = None, max_height: int = 12000) -> Path:
        """A PNG of the whole page (up to `max_height` pixels tall)."""
        height = min(max_height, height or int(self.evaluate("document.documentElement.scrollHeight")))
        self.send("Emulation.setDeviceMetricsOverride", {"width": self.width, "height": height,
                                                         "deviceScaleFactor": 1, "mobile": False})
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        self.send("Emulation.clearDeviceMetricsOverride")
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            if getattr(self, "socket", None):
                self.socket.close()
        finally:
            stop(self.process, 10)
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def is_png(path: Path) -> bool:
    return Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 1000
