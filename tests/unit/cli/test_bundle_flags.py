"""`serve`'s bundle flags: misuse refused naming the flag; the runtime pointed at the source."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from cnm_policy.cli._bundle_flags import bundle_source
from cnm_policy.cli._serve_flags import add_serve_arguments, runtime_options


def parse(*argv: str) -> argparse.Namespace:
    """`serve`'s flags parsed as the CLI parses them."""
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return parser.parse_args(list(argv))


def test_a_bundle_url_points_the_runtime_at_the_state_directory(tmp_path: Path) -> None:
    """The reloader reads this process's STATE/proc-<pid>/current, unpolled: the source drives."""
    args = parse("--bundle-url", "https://b.example/cnm.tar.gz", "--state-dir", str(tmp_path))
    source, options = bundle_source(args, runtime_options(args))
    assert source is not None
    own = tmp_path / f"proc-{os.getpid()}" / "current"
    assert (options.policies, options.watch_interval) == (own, None)


def test_without_a_url_nothing_changes() -> None:
    """No --bundle-url: no source, the options as they were."""
    args = parse()
    options = runtime_options(args)
    assert bundle_source(args, options) == (None, options)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--state-dir", "s"), "--state-dir needs --bundle-url"),
        (("--bundle-public-key", "k"), "--bundle-public-key needs --bundle-url"),
        (("--bundle-url", "https://b/x", "--policies", "p", "--state-dir", "s"), "do not go"),
        (("--bundle-url", "https://b/x"), "needs --state-dir"),
        (("--bundle-url", "file:///x", "--state-dir", "s"), "--bundle-url: bundle URL"),
        (
            ("--bundle-url", "https://b/x", "--state-dir", "s", "--bundle-poll-interval", "0"),
            "--bundle-poll-interval: `0` is not a positive duration",
        ),
        (
            ("--bundle-url", "https://b/x", "--state-dir", "s", "--bundle-timeout", "soon"),
            "--bundle-timeout: `soon` is not a duration",
        ),
    ],
)
def test_misuse_is_refused_naming_the_flag(argv: tuple[str, ...], message: str) -> None:
    """Each refusal is a configuration error (exit 2) that names its flag."""
    args = parse(*argv)
    with pytest.raises(ValueError, match=message):
        bundle_source(args, runtime_options(args))
