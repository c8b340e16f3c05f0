"""A stop signal while `cnm-policy serve` loads its first version: exit 0 at once, never serve.

A bundle under every limit can still take many seconds to load; Kubernetes sends SIGTERM and
kills 30 s later, so the stop must not wait for the load (issue #17 review, finding 1).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.hostile.corpus import copy_good_bundle, wide_text

SLOW_RULE_FILES = 4  # each ~500,000 units in lists under the item cap: seconds to load
STOPPED_WITHIN = 2.0  # seconds from SIGTERM to exit (the load alone takes far longer)


def wait_until(condition: Callable[[], bool], deadline: float) -> bool:
    """Poll `condition` until it holds or `deadline` (monotonic) passes."""
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_sigterm_during_the_first_load_exits_0_promptly_without_serving(tmp_path: Path) -> None:
    """SIGTERM once `policy_loading` is logged (debug): exit 0 within 2 s, never started."""
    bundle = copy_good_bundle(tmp_path / "bundle")
    for i in range(SLOW_RULE_FILES):
        (bundle / "rules" / f"slow-{i}.yaml").write_text(wide_text("rules"), encoding="utf-8")
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "cnm_policy", "serve", "--policies", str(bundle)]
    command += ["--listen", "127.0.0.1:0", "--log-format", "json", "--log-level", "debug"]
    with log.open("wb") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        loading = wait_until(lambda: b'"policy_loading"' in log.read_bytes(), time.monotonic() + 20)
        sent = time.monotonic()
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    text = log.read_text(encoding="utf-8")
    print(f"exit {code} {took:.2f} s after SIGTERM")
    assert (loading, code, took < STOPPED_WITHIN) == (True, 0, True), text[-2000:]
    assert ("sidecar_started" in text, '"sidecar_stopped"' in text) == (False, True)
