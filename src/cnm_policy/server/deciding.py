"""Decoded requests -> decisions: the one engine call every door makes after decoding.

The gRPC servicer and the HTTP decider both decode through `RequestDecoder`; here a caching
engine is keyed by the decoder's fingerprints (explain requests never are), and a batch error
about one item is located (``items[3].resource.tenant``).
"""

from __future__ import annotations

from cnm_policy.errors import InvalidRequestError
from cnm_policy.model import Decision
from cnm_policy.server.ports import DecisionEngine, FingerprintedEngine
from cnm_policy.server.wire.convert import BatchQuery
from cnm_policy.server.wire.decode import DecodedCheck

__all__ = ["decide_check", "decide_query_batch"]


def decide_check(
    engine: DecisionEngine, fingerprinted: FingerprintedEngine | None, decoded: DecodedCheck
) -> Decision:
    """The decision on one decoded `CheckRequest` (`fingerprinted`: `engine` when it caches)."""
    query = decoded.query
    if fingerprinted is not None and not decoded.explain:
        return fingerprinted.check_fingerprinted(
            decoded.fingerprint,
            query.principal,
            query.action,
            query.resource,
            query.context,
            query.actor,
        )
    return engine.check(
        query.principal,
        query.action,
        query.resource,
        query.context,
        explain=decoded.explain,
        actor=query.actor,
    )


def decide_query_batch(
    engine: DecisionEngine, fingerprinted: FingerprintedEngine | None, query: BatchQuery
) -> list[Decision]:
    """One decision per item of a decoded batch, in order; errors name the item."""
    shared = (query.principal, query.items, query.context)
    try:
        decisions = (
            fingerprinted.check_batch_fingerprinted(
                query.shared_fingerprint, query.item_fingerprints, *shared, query.actor
            )
            if fingerprinted is not None and not query.explain and query.shared_fingerprint
            else engine.check_batch(*shared, explain=query.explain, actor=query.actor)
        )
    except InvalidRequestError as exc:
        raise _locate(engine, exc, query) from exc
    if len(decisions) != len(query.items):  # fail closed on a broken engine contract
        raise RuntimeError(f"engine returned {len(decisions)} decisions for {len(query.items)}")
    return decisions


def _locate(engine: DecisionEngine, error: InvalidRequestError, query: BatchQuery) -> Exception:
    """Name the batch item behind an item-level error (``items[3].resource.tenant``).

    The engine validates items as it meets them and reports fields relative to the item;
    only on this error path is each item re-checked alone to find which one it was.
    """
    if not error.field.startswith(("action", "resource")):
        return error  # principal or context: not about one item
    for index, item in enumerate(query.items):
        try:
            engine.check_batch(query.principal, [item], query.context)
        except InvalidRequestError as item_error:
            return type(item_error)(f"items[{index}].{item_error.field}", item_error.message)
    return error
