"""`serve`'s bundle-distribution flags: fetch the bundle archive from a URL instead of a folder.

Kept apart from `_serve_flags.py`; `serve` builds the source here and points the runtime at
the directory the source maintains (``STATE/proc-<pid>/current``), the directory watcher off: the
source drives every reload (docs/operations.md).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from cnm_policy.distribution.fetch import DEFAULT_TIMEOUT_SECONDS, validate_url
from cnm_policy.distribution.http_source import DEFAULT_POLL_SECONDS, HttpBundleSource
from cnm_policy.distribution.signing import load_public_key
from cnm_policy.ops.durations import parse_duration
from cnm_policy.server.runtime import RuntimeOptions

__all__ = ["add_bundle_arguments", "bundle_source"]


def add_bundle_arguments(parser: argparse.ArgumentParser) -> None:
    """--bundle-url, --bundle-public-key, --state-dir, --bundle-poll-interval, --bundle-timeout."""
    add = parser.add_argument
    add(
        "--bundle-url",
        metavar="URL",
        help="serve the bundle archive at this http(s) URL (`cnm-policy build DIR -o ...`), "
        "polled with If-None-Match; instead of --policies; needs --state-dir",
    )
    add(
        "--bundle-public-key",
        metavar="PEM",
        help="refuse archives not signed by this Ed25519 public key (`build --sign`)",
    )
    add(
        "--state-dir",
        metavar="DIR",
        help="where the last good archive is kept, so a restart while the URL is down serves it "
        "(subject to --max-policy-age); a writable volume, one per sidecar",
    )
    add(
        "--bundle-poll-interval",
        default=f"{DEFAULT_POLL_SECONDS:g}s",
        metavar="DURATION",
        help="poll the URL this often, +-10%% jitter (default: %(default)s)",
    )
    add(
        "--bundle-timeout",
        default=f"{DEFAULT_TIMEOUT_SECONDS:g}s",
        metavar="DURATION",
        help="one fetch, connection to last byte, takes at most this long (default: %(default)s)",
    )


def bundle_source(
    args: argparse.Namespace, options: RuntimeOptions
) -> tuple[HttpBundleSource | None, RuntimeOptions]:
    """The HTTP source and the options pointed at it; ValueError naming the flag otherwise."""
    if args.bundle_url is None:
        for flag in ("bundle_public_key", "state_dir"):
            if getattr(args, flag) is not None:
                raise ValueError(f"--{flag.replace('_', '-')} needs --bundle-url")
        return None, options
    if args.policies is not None:
        raise ValueError("--policies and --bundle-url do not go together")
    if args.state_dir is None:
        raise ValueError("--bundle-url needs --state-dir DIR (a writable volume)")
    try:
        url = validate_url(args.bundle_url)
    except ValueError as exc:
        raise ValueError(f"--bundle-url: {exc}") from exc
    durations = {}
    for flag in ("bundle_poll_interval", "bundle_timeout"):
        try:
            durations[flag] = parse_duration(str(getattr(args, flag)))
        except ValueError as exc:
            raise ValueError(f"--{flag.replace('_', '-')}: {exc}") from exc
    key = None if args.bundle_public_key is None else load_public_key(args.bundle_public_key)
    source = HttpBundleSource(
        url,
        args.state_dir,
        public_key=key,
        interval=durations["bundle_poll_interval"],
        timeout=durations["bundle_timeout"],
    )
    return source, replace(options, policies=source.path, watch_interval=None)
