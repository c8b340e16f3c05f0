"""Settings layers on a small parser: not-given is visible, each layer typed like its flag."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml

from cnm_policy.ops import config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2, help="default: %(default)s")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--log-attribute", action="append", default=[])
    parser.add_argument("--bundle-url")
    parser.add_argument("--jwt-secret")
    config.install(parser)
    return parser


def _resolve(argv: list[str], env: dict[str, str]) -> tuple[argparse.Namespace, dict[str, str]]:
    args = _parser().parse_args(argv)
    return args, config.resolve(args, env)


def test_help_still_states_the_real_default() -> None:
    """Defaults move aside for layering, but --help keeps naming them."""
    assert "default: 2" in _parser().format_help()


def test_defaults_fill_what_no_layer_gives() -> None:
    """Nothing given: every setting is its default, and says so."""
    args, sources = _resolve([], {})
    assert (args.workers, args.no_cache, args.log_attribute) == (2, False, [])
    assert set(sources.values()) == {"default"}


@pytest.mark.parametrize(
    ("text", "expected"), [("1", True), ("yes", True), ("false", False), ("off", False)]
)
def test_switches_from_the_environment(text: str, expected: bool) -> None:
    """A store_true flag reads the usual words for true and false."""
    args, _sources = _resolve([], {"CNM_POLICY_NO_CACHE": text})
    assert args.no_cache is expected


def test_lists_from_the_environment_are_comma_separated() -> None:
    """A repeatable flag takes a comma-separated list from its variable."""
    args, _sources = _resolve([], {"CNM_POLICY_LOG_ATTRIBUTE": "context.a, principal.b"})
    assert args.log_attribute == ["context.a", "principal.b"]


def test_null_in_the_file_means_the_default(tmp_path: Path) -> None:
    """`key: null` (as --print-config writes unset settings) keeps the default."""
    path = tmp_path / "c.yaml"
    path.write_text("workers: null\nno-cache: true\n")
    args, sources = _resolve(["--config", str(path)], {})
    assert (args.workers, args.no_cache, sources["workers"]) == (2, True, "default")


def test_resolving_twice_changes_nothing() -> None:
    """The second resolve returns the same sources and leaves the values alone."""
    args, sources = _resolve(["--workers", "5"], {"CNM_POLICY_WORKERS": "7"})
    assert (config.resolve(args, {"CNM_POLICY_WORKERS": "9"}), args.workers) == (sources, 5)


def test_render_masks_secrets_and_round_trips_unmasked(tmp_path: Path) -> None:
    """Masked for people; unmasked (children's private file) it reads back as the same values."""
    env = {
        "CNM_POLICY_BUNDLE_URL": "https://u:p@h/b.tar.gz",
        "CNM_POLICY_JWT_SECRET": "hunter2",
    }
    args, sources = _resolve(["--workers", "3"], env)
    shown = yaml.safe_load(config.render(args, sources))
    assert (shown["bundle-url"], shown["jwt-secret"]) == ("https://***@h/b.tar.gz", "***")
    path = tmp_path / "private.yaml"
    path.write_text(config.render(args, sources, mask=False))
    again, _sources = _resolve(["--config", str(path)], {})
    assert (again.workers, again.bundle_url, again.jwt_secret) == (
        3,
        env["CNM_POLICY_BUNDLE_URL"],
        "hunter2",
    )
