"""Call the cnm-policy sidecar from a service: one check, then one batch to filter a list.

Start the sidecar on the bundled policy (``make run``, or ``cnm-policy serve``), then::

    python examples/client.py 127.0.0.1:50051
    python examples/client.py unix:/run/cnm-policy/sidecar.sock --timeout 0.5

Two habits every caller should copy:

- **Fail closed.** An error status (sidecar down, deadline passed, invalid request) is never an
  answer; treat it as "not allowed". A deny is a normal response with ``allowed: false``.
- **Filter lists with CheckBatch.** One call for a page of devices or tickets costs far less
  than one call per row, and every answer in it comes from the same policy version.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf.struct_pb2 import Struct

from cnm_policy.v1 import policy_pb2 as pb
from cnm_policy.v1 import policy_pb2_grpc as pb_grpc

# A customer's portal user: reads the inventory of organisation `acme` and its sub-organisations.
VIEWER = pb.Principal(id="u-1001", tenant="acme", roles=["customer-viewer"])
CONTEXT = Struct()
CONTEXT.update({"channel": "portal"})

SINGLE = pb.CheckRequest(
    principal=VIEWER,
    action="read",
    resource=pb.Resource(kind="device", id="dev-1", tenant="acme/emea"),
    context=CONTEXT,
)


def _item(action: str, kind: str, resource_id: str, tenant: str) -> pb.CheckBatchItem:
    return pb.CheckBatchItem(
        action=action, resource=pb.Resource(kind=kind, id=resource_id, tenant=tenant)
    )


# The rows of a device/ticket list page, before filtering.
PAGE = [
    _item("read", "device", "dev-1", "acme/emea"),
    _item("read", "device", "dev-2", "acme/apac"),
    _item("read", "device", "dev-3", "globex"),
    _item("reboot", "device", "dev-1", "acme/emea"),
    _item("read", "ticket", "T-77", "acme"),
]
BATCH = pb.CheckBatchRequest(principal=VIEWER, items=PAGE, context=CONTEXT)

TIMEOUT_SECONDS = 2.0  # always set a deadline: an access check must not hang a request


def describe(action: str, resource: pb.Resource, response: pb.CheckResponse) -> str:
    """One readable line per decision: what was asked, the answer, and the rules behind it."""
    answer = "allow" if response.allowed else "deny"
    rules = ", ".join(response.rule_ids) or "-"
    return (
        f"{action} {resource.kind} {resource.id}@{resource.tenant}: {answer} "
        f"[{rules}] (policy {response.policy.name} {response.policy.version})"
    )


def run(stub: Any, request_id: str, timeout: float = TIMEOUT_SECONDS) -> list[str]:
    """One Check and one CheckBatch; returns the lines to print."""
    metadata = (("x-request-id", request_id),)
    single = stub.Check(SINGLE, timeout=timeout, metadata=metadata)
    lines = ["check " + describe(SINGLE.action, SINGLE.resource, single)]
    batch = stub.CheckBatch(BATCH, timeout=timeout, metadata=metadata)
    for item, result in zip(PAGE, batch.results, strict=True):
        lines.append("batch " + describe(item.action, item.resource, result))
    visible = [item.resource.id for item, result in zip(PAGE, batch.results, strict=True)
               if result.allowed and item.action == "read"]  # fmt: skip
    lines.append(f"visible rows: {', '.join(visible) or 'none'}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when the sidecar answered, 1 (fail closed: treat as deny) when it did not."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("address", help="sidecar address: HOST:PORT or unix:PATH")
    parser.add_argument(
        "--timeout",
        type=float,
        default=TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"deadline of each call (default: {TIMEOUT_SECONDS})",
    )
    args = parser.parse_args(argv)
    with grpc.insecure_channel(args.address) as channel:
        # The generated stub is untyped (grpc_tools writes no .pyi for services).
        stub = pb_grpc.PolicyServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            lines = run(stub, request_id=uuid.uuid4().hex, timeout=args.timeout)
        except grpc.RpcError as exc:
            print(f"no decision ({exc.code().name}): treating as deny", file=sys.stderr)
            return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
