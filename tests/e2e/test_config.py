"""`serve` settings from a YAML file and CNM_POLICY_* variables: flags > env > file > defaults,
unknown keys refused by name, secrets masked in --print-config, a real process configured so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from cnm_policy.cli import main
from tests.e2e.harness import copy_bundle, policy_stub
from tests.e2e.test_ops_metrics import ALLOW, poll

pytestmark = pytest.mark.e2e


def _print_config(
    arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any], str]:
    code = main(["serve", "--print-config", *arguments])
    captured = capsys.readouterr()
    return code, (yaml.safe_load(captured.out) or {}) if code == 0 else {}, captured.err


def test_flags_beat_env_beat_the_file_beat_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each setting comes from the highest layer that gives it."""
    config = tmp_path / "cnm.yaml"
    config.write_text("cache-size: 1\nworkers: 1\ngrace: 4\nmax_policy_age: 10m\nno-cache: true\n")
    monkeypatch.setenv("CNM_POLICY_CACHE_SIZE", "5")
    monkeypatch.setenv("CNM_POLICY_WORKERS", "3")
    monkeypatch.setenv("CNM_POLICY_NO_CACHE", "false")
    code, settings, _err = _print_config(["--config", str(config), "--cache-size", "7"], capsys)
    assert code == 0
    chosen = {key: settings[key] for key in ("cache-size", "workers", "grace", "no-cache")}
    assert chosen == {"cache-size": 7, "workers": 3, "grace": 4.0, "no-cache": False}
    assert (settings["max-policy-age"], settings["cache-ttl"]) == ("10m", 60.0)


def test_the_config_file_may_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """CNM_POLICY_CONFIG names the file when --config is not given; lists stay lists."""
    config = tmp_path / "cnm.yaml"
    config.write_text("log-attribute: [context.channel, principal.mfa]\n")
    monkeypatch.setenv("CNM_POLICY_CONFIG", str(config))
    _code, settings, _err = _print_config([], capsys)
    assert settings["log-attribute"] == ["context.channel", "principal.mfa"]


@pytest.mark.parametrize(
    ("file_text", "env", "message"),
    [
        (
            "cache-sise: 3\n",
            {},
            "cnm.yaml`:1: unknown key `cache-sise` (did you mean `cache-size`?)",
        ),
        ("\nworkers: [2]\n", {}, "cnm.yaml`:2: `workers` must be a single value"),
        ("no-cache: maybe\n", {}, "`no-cache` must be true or false"),
        ("log-format: xml\n", {}, "`xml` is not one of `auto`, `json`, `console`"),
        ("", {"CNM_POLICY_LISTN": "x"}, "CNM_POLICY_LISTN: unknown setting `listn`"),
        ("", {"CNM_POLICY_WORKERS": "two"}, "CNM_POLICY_WORKERS: `two` is not a valid value"),
    ],
)
def test_unknown_or_mistyped_settings_are_refused_by_name(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    file_text: str,
    env: dict[str, str],
    message: str,
) -> None:
    """A typo in a key or a value is exit 2 naming the key (and the line), before anything runs."""
    config = tmp_path / "cnm.yaml"
    config.write_text(file_text)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, _settings, err = _print_config(["--config", str(config)], capsys)
    assert (code, message in err) == (2, True), err


def test_print_config_masks_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Credentials in a URL are masked; where the rest comes from is said in comments."""
    monkeypatch.setenv("CNM_POLICY_BUNDLE_URL", "https://robot:s3cret@bundles.example/cnm.tar.gz")
    code = main(["serve", "--print-config"])
    out = capsys.readouterr().out
    assert code == 0
    assert "s3cret" not in out
    assert "bundle-url: https://***@bundles.example/cnm.tar.gz" in out
    assert "# bundle-url: from env" in out


def test_print_config_masks_a_token_in_the_query(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `?token=...` (and a fragment) of --bundle-url is masked like user:pass@ is."""
    url = "https://bundles.example:8443/cnm.tar.gz?token=s3cret&x=1#f"
    code = main(["serve", "--print-config", "--bundle-url", url, "--state-dir", "/tmp/x"])
    out = capsys.readouterr().out
    assert (code, "s3cret" in out) == (0, False)
    assert "bundle-url: https://bundles.example:8443/cnm.tar.gz?***#***" in out


def test_a_process_configured_by_file_and_env_alone(tmp_path: Path) -> None:
    """No serve flags: the file names the bundle and ops socket, env the decision socket."""
    sockets = Path(os.path.realpath("/tmp")) / f"cnm-cfg-{os.getpid()}"
    sockets.mkdir(exist_ok=True)
    listen, ops = f"unix:{sockets}/d.sock", f"unix:{sockets}/o.sock"
    bundle = copy_bundle(tmp_path / "bundle")
    config = tmp_path / "cnm.yaml"
    config.write_text(f"policies: {bundle}\nops-listen: {ops}\nwatch-interval: 0\n")
    env = {**os.environ, "CNM_POLICY_CONFIG": str(config), "CNM_POLICY_LISTEN": listen}
    process = subprocess.Popen(
        [sys.executable, "-m", "cnm_policy", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        poll(lambda: main(["healthcheck", "--ops", ops, "--timeout", "1"]) == 0, seconds=30)
        with grpc.insecure_channel(listen) as channel:
            assert policy_stub(channel).Check(ALLOW, timeout=5).allowed
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
        for path in sockets.iterdir():
            path.unlink()
        sockets.rmdir()
