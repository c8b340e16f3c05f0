"""The directory file: validated whole, bounded, gated and hot-reloaded like the bundle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnm_policy.errors import DirectoryInvalidError, UnauthenticatedError
from cnm_policy.model import Principal
from cnm_policy.principals import PrincipalResolver, open_directory, parse_directory
from cnm_policy.principals.directory import read_directory_file
from cnm_policy.reload import ReloadOutcome

GOOD = """\
principals:
  u-17:
    tenant: acme/emea
    roles: [customer-viewer]
    attributes: {mfa: true, level: 3.0}
  svc-noc:
    tenant: provider
    roles: [noc-operator]
"""


def write(tmp_path: Path, text: str, name: str = "directory.yaml") -> Path:
    """Write a directory file."""
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_directory_maps_ids_to_tenant_roles_and_attributes(tmp_path: Path) -> None:
    """Each entry is read as written; integral numbers are ints, as over the wire."""
    directory = parse_directory(read_directory_file(write(tmp_path, GOOD)))
    entry = directory.get("u-17")
    assert entry is not None
    assert (
        entry.tenant,
        entry.roles,
        dict(entry.attributes),
    ) == ("acme/emea", ("customer-viewer",), {"mfa": True, "level": 3})
    assert isinstance(entry.attributes["level"], int)
    assert directory.get("nobody") is None


def test_a_json_directory_is_read_too(tmp_path: Path) -> None:
    """`.json` files are parsed as JSON."""
    path = write(tmp_path, '{"principals": {"a": {"tenant": "acme"}}}', "directory.json")
    entry = parse_directory(read_directory_file(path)).get("a")
    assert entry is not None
    assert (entry.tenant, entry.roles) == ("acme", ())


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("principals:\n  a: {tenant: acme/}\n", "principals.a.tenant"),
        ("principals:\n  a: {tenant: acme, roles: admin}\n", "principals.a.roles"),
        ("principals:\n  a: {tenant: acme, extra: 1}\n", "principals.a"),
        ("principals:\n  a: {tenant: acme}\n  a: {tenant: beta}\n", "appears twice"),
        ("users: {}\n", "one mapping"),
        ("a: &a [*a]\n", "yaml"),
    ],
)
def test_a_bad_directory_is_refused_with_the_place_named(
    tmp_path: Path, text: str, needle: str
) -> None:
    """Every problem is located; nothing of a bad file is used."""
    with pytest.raises(DirectoryInvalidError) as caught:
        parse_directory(read_directory_file(write(tmp_path, text)))
    assert needle in str(caught.value)


def test_an_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    """The read is bounded."""
    path = write(tmp_path, "")
    with open(path, "wb") as handle:
        handle.truncate(64 * 1024 * 1024 + 1)
    with pytest.raises(DirectoryInvalidError) as caught:
        read_directory_file(path)
    assert "larger than" in str(caught.value)


def test_a_changed_directory_goes_live_once_settled_and_a_bad_one_never(tmp_path: Path) -> None:
    """Hot reload: a good change swaps in, a bad change is refused and the old one serves."""
    path = write(tmp_path, GOOD)
    holder, reloader = open_directory(path, settle_seconds=0)
    first = holder.snapshot.digest
    path.write_text(GOOD.replace("customer-viewer", "customer-admin"))
    os.utime(path, ns=(1, 1))
    assert reloader.poll() == ReloadOutcome.SWAPPED
    entry = holder.snapshot.get("u-17")
    assert entry is not None
    assert entry.roles == ("customer-admin",)
    assert first != holder.snapshot.digest
    path.write_text("principals: [broken\n")
    assert reloader.poll() == ReloadOutcome.REJECTED
    assert entry.roles == ("customer-admin",)
    assert reloader.status.last_error_code == "directory_invalid"


def test_a_bad_directory_stops_startup(tmp_path: Path) -> None:
    """The first version must pass, as a bundle must."""
    with pytest.raises(DirectoryInvalidError):
        open_directory(write(tmp_path, "principals: {a: {}}\n"))


def resolver(tmp_path: Path, *, trust: bool = False) -> PrincipalResolver:
    """A resolver on the GOOD directory."""
    holder, _ = open_directory(write(tmp_path, GOOD))
    return PrincipalResolver(directory=lambda: holder.snapshot, trust_request_roles=trust)


def test_a_principal_named_by_id_is_completed_from_the_directory(tmp_path: Path) -> None:
    """Tenant, roles and attributes come from the directory; source is recorded."""
    resolved = resolver(tmp_path).resolve(Principal("u-17", ""), None)
    assert (
        resolved.principal.tenant,
        resolved.principal.roles,
        resolved.source,
    ) == ("acme/emea", ("customer-viewer",), "directory")


def test_nobody_grants_themselves_a_role(tmp_path: Path) -> None:
    """Roles, tenant and assigned tenants sent in the request are ignored."""
    sent = Principal(
        "u-17", "provider", ("noc-admin",), {"assigned_tenants": ["beta"], "channel": "portal"}
    )
    resolved = resolver(tmp_path).resolve(sent, None).principal
    assert (resolved.tenant, resolved.roles) == ("acme/emea", ("customer-viewer",))
    assert dict(resolved.attributes) == {"mfa": True, "level": 3, "channel": "portal"}


def test_trust_request_roles_keeps_what_the_request_says(tmp_path: Path) -> None:
    """--trust-request-roles: the request's tenant and roles win."""
    sent = Principal("u-17", "acme", ("customer-admin",))
    resolved = resolver(tmp_path, trust=True).resolve(sent, None)
    assert (resolved.principal.tenant, resolved.principal.roles) == ("acme", ("customer-admin",))


def test_an_unknown_principal_is_refused(tmp_path: Path) -> None:
    """Not in the directory, no token: principal_unknown."""
    with pytest.raises(UnauthenticatedError) as caught:
        resolver(tmp_path).resolve(Principal("stranger", "acme", ("customer-admin",)), None)
    assert caught.value.code == "principal_unknown"


def test_without_sources_the_request_is_taken_as_sent() -> None:
    """Nothing configured: today's behaviour, source `request`."""
    sent = Principal("u", "acme", ("customer-admin",))
    resolved = PrincipalResolver().resolve(sent, "ignored-token")
    assert (sent, "request") == (resolved.principal, resolved.source)


def test_an_actor_is_vouched_for_by_the_directory(tmp_path: Path) -> None:
    """An actor's claimed tenant and roles are replaced by the directory's, like a principal's."""
    sent = Principal("u-17", "provider/noc", ("noc-engineer",))
    actor = resolver(tmp_path).resolve_actor(sent)
    assert (actor.tenant, actor.roles) == ("acme/emea", ("customer-viewer",))


def test_an_unknown_actor_is_refused(tmp_path: Path) -> None:
    """An actor the directory does not know cannot act (actor_unknown), even with a token."""
    with pytest.raises(UnauthenticatedError) as caught:
        resolver(tmp_path).resolve_actor(Principal("ghost", "provider/noc", ("noc-engineer",)))
    assert caught.value.code == "actor_unknown"


def test_a_trusted_or_unconfigured_door_takes_the_actor_as_sent(tmp_path: Path) -> None:
    """With --trust-request-roles, or no principal source, the actor is taken as sent."""
    sent = Principal("ghost", "acme", ("customer-admin",))
    assert resolver(tmp_path, trust=True).resolve_actor(sent) == sent
    assert PrincipalResolver().resolve_actor(sent) == sent
