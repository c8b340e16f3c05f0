"""deploy/kubernetes: valid against the Kubernetes schemas, restrictive, and true to the code.

`kubernetes-validate` checks every document offline against the published schemas (strict:
unknown fields are errors). The rest checks what schemas cannot: every container is locked
down, every sidecar's arguments are real `serve` flags, the ConfigMap is a bundle that passes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from cnm_policy.cli import build_parser
from cnm_policy.engine import load_snapshot
from cnm_policy.testing import run_suite
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy" / "kubernetes"
MANIFESTS = sorted(DEPLOY.rglob("*.yaml"))
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")  # the oldest and a recent supported minor


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of one manifest file."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """Every pod template, named by file and object."""
    found = []
    for path in MANIFESTS:
        for doc in documents(path):
            if doc["kind"] == "Deployment":
                name = f"{path.relative_to(DEPLOY)}:{doc['metadata']['name']}"
                found.append((name, doc["spec"]["template"]["spec"]))
    return found


def containers() -> list[tuple[str, dict[str, Any]]]:
    """Every container and init container, named by file and container."""
    return [
        (f"{name}/{container['name']}", container)
        for name, spec in pod_specs()
        for container in (*spec.get("initContainers", ()), *spec["containers"])
    ]


def sidecars() -> list[tuple[str, dict[str, Any]]]:
    """The cnm-policy containers."""
    return [(name, c) for name, c in containers() if c["name"] == "cnm-policy"]


def test_there_are_manifests_for_each_policy_source() -> None:
    """ConfigMap, git-sync and HTTP: one sidecar each."""
    assert sorted(name.split("/")[0] for name, _ in sidecars()) == [
        "configmap",
        "git-sync",
        "http",
    ]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_document_is_valid_against_the_kubernetes_schema(path: Path, version: str) -> None:
    """Strict validation: a typo in a field name fails as surely as a wrong type."""
    for doc in documents(path):
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("name", [name for name, _ in containers()])
def test_every_container_is_locked_down_and_bounded(name: str) -> None:
    """No privilege escalation, no capabilities, read-only root, a memory limit."""
    container = dict(containers())[name]
    context, resources = container["securityContext"], container["resources"]
    assert (
        context["allowPrivilegeEscalation"],
        context["readOnlyRootFilesystem"],
        context["capabilities"]["drop"],
        "memory" in resources["limits"],
        set(resources["requests"]),
    ) == (False, True, ["ALL"], True, {"cpu", "memory"})


@pytest.mark.parametrize("name", [name for name, _ in pod_specs()])
def test_every_pod_runs_as_non_root_with_the_default_seccomp_profile(name: str) -> None:
    """The pod-level context every container inherits."""
    spec = dict(pod_specs())[name]
    context = spec["securityContext"]
    assert (context["runAsNonRoot"], context["seccompProfile"]["type"]) == (True, "RuntimeDefault")
    assert context["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", [name for name, _ in sidecars()])
def test_each_sidecar_is_probed_on_its_ops_listener(name: str) -> None:
    """Liveness on /healthz, readiness and startup on /readyz, all on the ops port it opens."""
    sidecar = dict(sidecars())[name]
    ops = next(arg for arg in sidecar["args"] if arg.startswith("--ops-listen="))
    port = int(ops.rsplit(":", 1)[1])
    probes = {
        kind: (sidecar[kind]["httpGet"]["path"], sidecar[kind]["httpGet"]["port"])
        for kind in ("livenessProbe", "readinessProbe", "startupProbe")
    }
    assert probes == {
        "livenessProbe": ("/healthz", "ops"),
        "readinessProbe": ("/readyz", "ops"),
        "startupProbe": ("/readyz", "ops"),
    }
    assert sidecar["ports"] == [{"name": "ops", "containerPort": port}]


@pytest.mark.parametrize("name", [name for name, _ in sidecars()])
def test_each_sidecars_arguments_are_real_serve_flags(name: str) -> None:
    """The arguments parse with the CLI's own parser (a renamed flag fails here)."""
    sidecar = dict(sidecars())[name]
    args = build_parser().parse_args(sidecar["args"])
    assert (args.command, args.listen.startswith(("127.0.0.1:", "unix:"))) == ("serve", True)


def test_the_configmap_mounted_through_its_items_is_a_bundle_that_passes_its_tests(
    tmp_path: Path,
) -> None:
    """Every key is mounted at its path, and that tree loads and passes its own tests."""
    spec = importlib.util.spec_from_file_location("render", DEPLOY / "render_configmap.py")
    assert spec is not None and spec.loader is not None
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    (configmap,) = documents(DEPLOY / "configmap" / "policy-bundle.yaml")
    (deployment,) = documents(DEPLOY / "configmap" / "deployment.yaml")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    items = volumes["policies"]["configMap"]["items"]
    assert sorted(item["key"] for item in items) == sorted(configmap["data"])
    assert all(render.key_for(item["path"]) == item["key"] for item in items)
    for item in items:  # what the kubelet does with `items:`
        path = tmp_path / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(configmap["data"][item["key"]], encoding="utf-8")
    result = run_suite(load_snapshot(tmp_path))
    assert (result.ok, result.total > 0) == (True, True), (
        "regenerate from policies/cnm: cd deploy/kubernetes && python render_configmap.py "
        "../../policies/cnm > configmap/policy-bundle.yaml"
    )
