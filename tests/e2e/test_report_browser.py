"""The HTML report in a real browser: headless Chromium opens it offline, draws the charts, logs
no error, and takes a screenshot (over the DevTools protocol)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket

from cnm_policy.cli import main
from tests.unit.insights.scenario import EVE, POLICIES, Recorder, device, write_day, write_governed

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DEADLINE = 60.0  # seconds: a cold start on a busy two-core machine


class Page:
    """One page target's DevTools session: commands answered in order, events kept."""

    def __init__(self, url: str) -> None:
        self._socket = websocket.create_connection(url, timeout=DEADLINE, suppress_origin=True)
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer, keeping the events that come first."""
        self._next += 1
        self._socket.send(json.dumps({"id": self._next, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == self._next:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result
            self.events.append(message)

    def wait_for(self, method: str) -> None:
        """Read events until `method` arrives."""
        deadline = time.monotonic() + DEADLINE
        while not any(e.get("method") == method for e in self.events):
            assert time.monotonic() < deadline, f"no {method}"
            self.events.append(json.loads(self._socket.recv()))

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()


def _port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    """The DevTools port Chromium chose, from the file it writes into its profile."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + DEADLINE
    while not (marker.exists() and marker.read_text().strip()):
        assert process.poll() is None, "chromium exited"
        assert time.monotonic() < deadline, "chromium did not open its DevTools port"
        time.sleep(0.05)  # polling a file another process writes, under a deadline
    return int(marker.read_text().splitlines()[0])


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A blank page in a fresh headless Chromium, with Runtime, Log and Page events on."""
    profile = tmp_path / "profile"
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = _port(profile, process)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=DEADLINE) as r:
            targets = json.load(r)
        target = next(t for t in targets if t["type"] == "page")
        session = Page(target["webSocketDebuggerUrl"])
        for domain in ("Runtime", "Log", "Page"):
            session.send(f"{domain}.enable")
        yield session
        session.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _errors(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Console errors, log entries at error level, and uncaught exceptions."""
    return [
        e
        for e in events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]


def test_the_html_report_renders_offline_with_charts_and_no_errors(
    page: Page, tmp_path: Path
) -> None:
    """The report file opens from disk, draws five charts, logs nothing wrong, screenshots;
    the security sections (break-glass, actors) show their rows."""
    log = tmp_path / "day.jsonl"
    write_day(log)
    recorder = Recorder(log)  # a hostile action in a reason, as the unit tests have
    recorder.at(200).check(EVE, "x|<img src=x onerror=alert(1)>`", device("dev-1", "acme"))
    recorder.close()
    write_governed(tmp_path / "governed.jsonl")
    html = tmp_path / "report.html"
    logs = [str(log), str(tmp_path / "governed.jsonl")]
    argv = ["report", *logs, "--policies", str(POLICIES), "--format", "html"]
    assert main([*argv, "--output", str(html)]) == 0

    page.send("Page.navigate", url=html.as_uri())
    page.wait_for("Page.loadEventFired")
    counts = page.send(
        "Runtime.evaluate",
        expression="[document.querySelectorAll('svg').length, "
        "document.querySelectorAll('svg rect').length, document.images.length, "
        "document.title]",
        returnByValue=True,
    )["result"]["value"]
    rows = page.send(
        "Runtime.evaluate",
        expression="[...document.querySelectorAll('section')].filter(s => "
        "/^(Audited access|On behalf of)/.test(s.querySelector('h2').textContent))"
        ".map(s => s.querySelectorAll('tbody tr').length)",
        returnByValue=True,
    )["result"]["value"]
    shot = base64.b64decode(page.send("Page.captureScreenshot", format="png")["data"])
    (tmp_path / "report.png").write_bytes(shot)

    assert _errors(page.events) == []
    assert counts[0] == 5
    assert counts[1] > 10
    assert counts[2:] == [0, "cnm-policy decision report"]
    assert rows == [3, 3]  # sam, kim, bob; pat, gus, sue
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(shot) > 10_000
