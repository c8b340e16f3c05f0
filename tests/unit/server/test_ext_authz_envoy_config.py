"""docs/envoy.md's Envoy bootstrap is valid for Envoy's own protobuf schema (xds-protos)."""

from __future__ import annotations

import re
from typing import Any

import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format

from tests.conftest import REPO_ROOT

# Imported for their types: the bootstrap's typed_config fields name them.
TYPED = (ext_authz_pb2, router_pb2, http_connection_manager_pb2, http_protocol_options_pb2)


def bootstrap_yaml() -> Any:
    """The first ```yaml block of docs/envoy.md that configures static resources."""
    text = (REPO_ROOT / "docs" / "envoy.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    return yaml.safe_load(next(b for b in blocks if b.startswith("static_resources:")))


def test_the_documented_bootstrap_parses_as_envoys_bootstrap() -> None:
    """Every field name, enum and typed_config resolves; ext_authz fails closed over gRPC."""
    bootstrap = json_format.ParseDict(bootstrap_yaml(), bootstrap_pb2.Bootstrap())
    manager = http_connection_manager_pb2.HttpConnectionManager()
    bootstrap.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.Unpack(manager)
    ext_authz = ext_authz_pb2.ExtAuthz()
    manager.http_filters[0].typed_config.Unpack(ext_authz)
    assert (ext_authz.failure_mode_allow, ext_authz.grpc_service.envoy_grpc.cluster_name) == (
        False,
        "cnm_policy",
    )
    assert [c.name for c in bootstrap.static_resources.clusters] == ["cnm_policy", "app"]
