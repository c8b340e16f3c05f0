import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Principal(_message.Message):
    __slots__ = ("id", "tenant", "roles", "attributes")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    attributes: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., tenant: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Resource(_message.Message):
    __slots__ = ("kind", "id", "tenant", "attributes")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    kind: str
    id: str
    tenant: str
    attributes: _struct_pb2.Struct
    def __init__(self, kind: _Optional[str] = ..., id: _Optional[str] = ..., tenant: _Optional[str] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class PolicyRef(_message.Message):
    __slots__ = ("name", "version", "digest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    digest: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ("principal", "action", "resource", "context", "explain", "actor")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    action: str
    resource: Resource
    context: _struct_pb2.Struct
    explain: bool
    actor: Principal
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., action: _Optional[str] = ..., resource: _Optional[_Union[Resource, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., explain: _Optional[bool] = ..., actor: _Optional[_Union[Principal, _Mapping]] = ...) -> None: ...

class RuleTrace(_message.Message):
    __slots__ = ("rule_id", "effect", "role_matched", "kind_matched", "action_matched", "scope_matched", "condition", "error", "applied")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    ROLE_MATCHED_FIELD_NUMBER: _ClassVar[int]
    KIND_MATCHED_FIELD_NUMBER: _ClassVar[int]
    ACTION_MATCHED_FIELD_NUMBER: _ClassVar[int]
    SCOPE_MATCHED_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    effect: str
    role_matched: bool
    kind_matched: bool
    action_matched: bool
    scope_matched: bool
    condition: bool
    error: str
    applied: bool
    def __init__(self, rule_id: _Optional[str] = ..., effect: _Optional[str] = ..., role_matched: _Optional[bool] = ..., kind_matched: _Optional[bool] = ..., action_matched: _Optional[bool] = ..., scope_matched: _Optional[bool] = ..., condition: _Optional[bool] = ..., error: _Optional[str] = ..., applied: _Optional[bool] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("allowed", "rule_ids", "reason", "policy", "cached", "trace", "errors", "valid_until", "decision_id", "matched_denies", "obligations", "limits_exceeded")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    RULE_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    MATCHED_DENIES_FIELD_NUMBER: _ClassVar[int]
    OBLIGATIONS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_EXCEEDED_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    rule_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    policy: PolicyRef
    cached: bool
    trace: _containers.RepeatedCompositeFieldContainer[RuleTrace]
    errors: _containers.RepeatedScalarFieldContainer[str]
    valid_until: _timestamp_pb2.Timestamp
    decision_id: str
    matched_denies: _containers.RepeatedScalarFieldContainer[str]
    obligations: _containers.RepeatedCompositeFieldContainer[Obligation]
    limits_exceeded: _containers.RepeatedCompositeFieldContainer[LimitExceeded]
    def __init__(self, allowed: _Optional[bool] = ..., rule_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., policy: _Optional[_Union[PolicyRef, _Mapping]] = ..., cached: _Optional[bool] = ..., trace: _Optional[_Iterable[_Union[RuleTrace, _Mapping]]] = ..., errors: _Optional[_Iterable[str]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., decision_id: _Optional[str] = ..., matched_denies: _Optional[_Iterable[str]] = ..., obligations: _Optional[_Iterable[_Union[Obligation, _Mapping]]] = ..., limits_exceeded: _Optional[_Iterable[_Union[LimitExceeded, _Mapping]]] = ...) -> None: ...

class LimitExceeded(_message.Message):
    __slots__ = ("rule_id", "name", "limit", "asked")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    ASKED_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    name: str
    limit: float
    asked: float
    def __init__(self, rule_id: _Optional[str] = ..., name: _Optional[str] = ..., limit: _Optional[float] = ..., asked: _Optional[float] = ...) -> None: ...

class Obligation(_message.Message):
    __slots__ = ("type", "rule_id", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    type: str
    rule_id: str
    params: _containers.ScalarMap[str, str]
    def __init__(self, type: _Optional[str] = ..., rule_id: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CheckBatchItem(_message.Message):
    __slots__ = ("action", "resource")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    action: str
    resource: Resource
    def __init__(self, action: _Optional[str] = ..., resource: _Optional[_Union[Resource, _Mapping]] = ...) -> None: ...

class CheckBatchRequest(_message.Message):
    __slots__ = ("principal", "items", "context", "explain", "actor")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    items: _containers.RepeatedCompositeFieldContainer[CheckBatchItem]
    context: _struct_pb2.Struct
    explain: bool
    actor: Principal
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., items: _Optional[_Iterable[_Union[CheckBatchItem, _Mapping]]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., explain: _Optional[bool] = ..., actor: _Optional[_Union[Principal, _Mapping]] = ...) -> None: ...

class CheckBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CheckResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[CheckResponse, _Mapping]]] = ...) -> None: ...

class GetPolicyInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CacheStats(_message.Message):
    __slots__ = ("enabled", "hits", "misses", "evictions", "size", "maxsize", "ttl_seconds")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    EVICTIONS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    MAXSIZE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    hits: int
    misses: int
    evictions: int
    size: int
    maxsize: int
    ttl_seconds: float
    def __init__(self, enabled: _Optional[bool] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., evictions: _Optional[int] = ..., size: _Optional[int] = ..., maxsize: _Optional[int] = ..., ttl_seconds: _Optional[float] = ...) -> None: ...

class ReloadStatus(_message.Message):
    __slots__ = ("last_attempt_at", "last_success_at", "last_error", "successes", "failures")
    LAST_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    SUCCESSES_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    last_attempt_at: _timestamp_pb2.Timestamp
    last_success_at: _timestamp_pb2.Timestamp
    last_error: str
    successes: int
    failures: int
    def __init__(self, last_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_success_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ..., successes: _Optional[int] = ..., failures: _Optional[int] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_batch_items", "max_attribute_depth", "max_attribute_bytes", "max_message_bytes")
    MAX_BATCH_ITEMS_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTRIBUTE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTRIBUTE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    max_batch_items: int
    max_attribute_depth: int
    max_attribute_bytes: int
    max_message_bytes: int
    def __init__(self, max_batch_items: _Optional[int] = ..., max_attribute_depth: _Optional[int] = ..., max_attribute_bytes: _Optional[int] = ..., max_message_bytes: _Optional[int] = ...) -> None: ...

class GetPolicyInfoResponse(_message.Message):
    __slots__ = ("policy", "loaded_at", "rule_count", "source", "reload", "cache", "limits")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    LOADED_AT_FIELD_NUMBER: _ClassVar[int]
    RULE_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RELOAD_FIELD_NUMBER: _ClassVar[int]
    CACHE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    policy: PolicyRef
    loaded_at: _timestamp_pb2.Timestamp
    rule_count: int
    source: str
    reload: ReloadStatus
    cache: CacheStats
    limits: Limits
    def __init__(self, policy: _Optional[_Union[PolicyRef, _Mapping]] = ..., loaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rule_count: _Optional[int] = ..., source: _Optional[str] = ..., reload: _Optional[_Union[ReloadStatus, _Mapping]] = ..., cache: _Optional[_Union[CacheStats, _Mapping]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ...) -> None: ...

class CanGrantRequest(_message.Message):
    __slots__ = ("granter", "role", "grantee_tenant", "valid_until")
    GRANTER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    GRANTEE_TENANT_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    granter: Principal
    role: str
    grantee_tenant: str
    valid_until: _timestamp_pb2.Timestamp
    def __init__(self, granter: _Optional[_Union[Principal, _Mapping]] = ..., role: _Optional[str] = ..., grantee_tenant: _Optional[str] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CanGrantResponse(_message.Message):
    __slots__ = ("allowed", "reason", "policy", "decision_id")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reason: str
    policy: PolicyRef
    decision_id: str
    def __init__(self, allowed: _Optional[bool] = ..., reason: _Optional[str] = ..., policy: _Optional[_Union[PolicyRef, _Mapping]] = ..., decision_id: _Optional[str] = ...) -> None: ...

class PlanResourcesRequest(_message.Message):
    __slots__ = ("principal", "action", "kind", "context")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    principal: Principal
    action: str
    kind: str
    context: _struct_pb2.Struct
    def __init__(self, principal: _Optional[_Union[Principal, _Mapping]] = ..., action: _Optional[str] = ..., kind: _Optional[str] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class PlanResourcesResponse(_message.Message):
    __slots__ = ("kind", "filter", "rule_ids", "reason", "policy", "valid_until", "cached", "decision_id")
    class PlanKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PLAN_KIND_UNSPECIFIED: _ClassVar[PlanResourcesResponse.PlanKind]
        ALWAYS_ALLOWED: _ClassVar[PlanResourcesResponse.PlanKind]
        ALWAYS_DENIED: _ClassVar[PlanResourcesResponse.PlanKind]
        CONDITIONAL: _ClassVar[PlanResourcesResponse.PlanKind]
    PLAN_KIND_UNSPECIFIED: PlanResourcesResponse.PlanKind
    ALWAYS_ALLOWED: PlanResourcesResponse.PlanKind
    ALWAYS_DENIED: PlanResourcesResponse.PlanKind
    CONDITIONAL: PlanResourcesResponse.PlanKind
    KIND_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    RULE_IDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    kind: PlanResourcesResponse.PlanKind
    filter: PlanNode
    rule_ids: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    policy: PolicyRef
    valid_until: _timestamp_pb2.Timestamp
    cached: bool
    decision_id: str
    def __init__(self, kind: _Optional[_Union[PlanResourcesResponse.PlanKind, str]] = ..., filter: _Optional[_Union[PlanNode, _Mapping]] = ..., rule_ids: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., policy: _Optional[_Union[PolicyRef, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., cached: _Optional[bool] = ..., decision_id: _Optional[str] = ...) -> None: ...

class PlanNode(_message.Message):
    __slots__ = ("constant", "all_of", "any_of", "negated", "compare", "one_of", "is_null", "present", "is_type", "within")
    CONSTANT_FIELD_NUMBER: _ClassVar[int]
    ALL_OF_FIELD_NUMBER: _ClassVar[int]
    ANY_OF_FIELD_NUMBER: _ClassVar[int]
    NEGATED_FIELD_NUMBER: _ClassVar[int]
    COMPARE_FIELD_NUMBER: _ClassVar[int]
    ONE_OF_FIELD_NUMBER: _ClassVar[int]
    IS_NULL_FIELD_NUMBER: _ClassVar[int]
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    IS_TYPE_FIELD_NUMBER: _ClassVar[int]
    WITHIN_FIELD_NUMBER: _ClassVar[int]
    constant: bool
    all_of: PlanNodes
    any_of: PlanNodes
    negated: PlanNode
    compare: PlanComparison
    one_of: PlanMembership
    is_null: str
    present: str
    is_type: PlanTypeTest
    within: str
    def __init__(self, constant: _Optional[bool] = ..., all_of: _Optional[_Union[PlanNodes, _Mapping]] = ..., any_of: _Optional[_Union[PlanNodes, _Mapping]] = ..., negated: _Optional[_Union[PlanNode, _Mapping]] = ..., compare: _Optional[_Union[PlanComparison, _Mapping]] = ..., one_of: _Optional[_Union[PlanMembership, _Mapping]] = ..., is_null: _Optional[str] = ..., present: _Optional[str] = ..., is_type: _Optional[_Union[PlanTypeTest, _Mapping]] = ..., within: _Optional[str] = ...) -> None: ...

class PlanNodes(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[PlanNode]
    def __init__(self, nodes: _Optional[_Iterable[_Union[PlanNode, _Mapping]]] = ...) -> None: ...

class PlanComparison(_message.Message):
    __slots__ = ("op", "field", "value")
    OP_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    op: str
    field: str
    value: _struct_pb2.Value
    def __init__(self, op: _Optional[str] = ..., field: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class PlanMembership(_message.Message):
    __slots__ = ("field", "values")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    field: str
    values: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    def __init__(self, field: _Optional[str] = ..., values: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ...) -> None: ...

class PlanTypeTest(_message.Message):
    __slots__ = ("field", "type")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    field: str
    type: str
    def __init__(self, field: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...
