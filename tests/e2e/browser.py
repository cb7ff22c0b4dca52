"""A real headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for testing
Pivot's HTML pages: console errors, network requests, the DOM after scripts ran, screenshots.

The browser is started by the test with a fresh profile, its DevTools port chosen by Chromium
(port 0, read back from DevToolsActivePort, on 127.0.0.1 only), and stopped afterwards.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

__all__ = ["ARTIFACTS", "Browser", "PageLoad"]

ARTIFACTS = Path(
    os.environ.get(
        "PIVOT_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
    )
)

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
)


def chromium_binary() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError(
            "headless Chromium is needed for the HTML page tests and is not installed: run "
            "`make browser` (apt-get install chromium)"
        )
    return found


class PageLoad:
    """What happened while a page loaded: console errors, uncaught exceptions, requested URLs."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.requests: list[str] = []

    def observe(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description") or details["text"])
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"]["text"])
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])


class Browser:
    """One Chromium process and a connection to its first tab."""

    def __init__(self, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = self._port(profile / "DevToolsActivePort")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as answer:
                tabs = json.load(answer)
            url = next(t["webSocketDebuggerUrl"] for t in tabs if t["type"] == "page")
            self.socket = websocket.create_connection(url, timeout=60, suppress_origin=True)
        except BaseException:
            self.close()
            raise
        self._next = 0
        self.load = PageLoad()

    def _port(self, file: Path, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode} at start-up")
            try:
                return int(file.read_text().splitlines()[0])
            except (FileNotFoundError, IndexError, ValueError):
                time.sleep(0.1)
        raise RuntimeError("chromium did not open its DevTools port within a minute")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer, recording the events that arrive meanwhile."""
        self._next += 1
        ident = self._next
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.load.observe(message)

    def wait_for(self, event: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv())
            self.load.observe(message)
            if message.get("method") == event:
                return
        raise RuntimeError(f"no {event} within {timeout}s")

    def open(self, url: str) -> PageLoad:
        """Load `url` and wait for its load event; returns what happened meanwhile."""
        self.load = PageLoad()
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r, 50)))")
        return self.load

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page (not just the window) at `path`."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": 1280, "height": min(height, 6000), "scale": 1},
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        socket = getattr(self, "socket", None)
        if socket is not None:
            socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
