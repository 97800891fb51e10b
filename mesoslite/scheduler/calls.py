"""Pure builders for Mesos v1 scheduler ``Call`` messages.

Each function returns a ``Call`` without ``framework_id``; the driver stamps the
framework id on before sending.  Identifiers may be given as plain strings, ``ID``
structs or (for offer ids) the ``Offer`` itself.  Nothing here does I/O, so the
JSON a framework produces can be checked without a master.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mesoslite.messages.mesos import (
    ID,
    DurationInfo,
    ExecutorInfo,
    Filters,
    FrameworkInfo,
    KillPolicy,
    Launch,
    LaunchGroup,
    Offer,
    Operation,
    OperationStatus,
    OperationType,
    TaskGroupInfo,
    TaskInfo,
)
from mesoslite.messages.scheduler import (
    Accept,
    AcceptInverseOffers,
    Acknowledge,
    AcknowledgeOperationStatus,
    Call,
    CallType,
    Decline,
    DeclineInverseOffers,
    Kill,
    Message,
    Reconcile,
    ReconcileOperation,
    ReconcileOperations,
    ReconcileTask,
    Revive,
    Shutdown,
    Subscribe,
    Suppress,
)

IdLike = str | ID
OfferRef = str | ID | Offer


def as_id(value: IdLike) -> ID:
    """``"x"`` or ``ID("x")`` -> ``ID("x")``."""
    return value if isinstance(value, ID) else ID(value=str(value))


def offer_ids(offers: Iterable[OfferRef]) -> list[ID]:
    """Offer ids from strings, ``ID`` structs or ``Offer`` structs.

    Raises ``TypeError`` for a bare string (a common slip that would otherwise be
    read as one offer id per character).
    """
    if isinstance(offers, (str, bytes)):
        raise TypeError("offer_ids must be a list of offer ids, not a single string")
    return [o.id if isinstance(o, Offer) else as_id(o) for o in offers]


def subscribe(framework_info: FrameworkInfo, suppressed_roles: Iterable[str] = ()) -> Call:
    """SUBSCRIBE; carries ``framework_info.id`` as the call's framework id when set
    (a re-subscription or a failover), as Mesos requires."""
    return Call(
        type=CallType.SUBSCRIBE,
        framework_id=framework_info.id,
        subscribe=Subscribe(
            framework_info=framework_info, suppressed_roles=sorted(set(suppressed_roles))
        ),
    )


def accept(
    offers: Iterable[OfferRef], operations: Sequence[Operation], filters: Filters | None = None
) -> Call:
    return Call(
        type=CallType.ACCEPT,
        accept=Accept(offer_ids=offer_ids(offers), operations=list(operations), filters=filters),
    )


def launch_operation(tasks: Sequence[TaskInfo]) -> Operation:
    """A LAUNCH operation for ``tasks`` (all on the agent of the accepted offers)."""
    return Operation(type=OperationType.LAUNCH, launch=Launch(task_infos=list(tasks)))


def launch_group_operation(executor: ExecutorInfo, tasks: Sequence[TaskInfo]) -> Operation:
    """A LAUNCH_GROUP operation: ``tasks`` start together under ``executor``."""
    return Operation(
        type=OperationType.LAUNCH_GROUP,
        launch_group=LaunchGroup(executor=executor, task_group=TaskGroupInfo(tasks=list(tasks))),
    )


def decline(offers: Iterable[OfferRef], refuse_seconds: float | None = None) -> Call:
    """DECLINE; ``refuse_seconds`` asks the master not to re-offer these resources
    for that long (Mesos' default is 5 s)."""
    filters = None if refuse_seconds is None else Filters(refuse_seconds=float(refuse_seconds))
    return Call(
        type=CallType.DECLINE, decline=Decline(offer_ids=offer_ids(offers), filters=filters)
    )


def answer_inverse_offers(inverse_offer_ids: Iterable[IdLike], accept: bool,
                          refuse_seconds: float | None = None) -> Call:
    """ACCEPT_INVERSE_OFFERS (``accept``) or DECLINE_INVERSE_OFFERS; no inverse offer
    for the same agent comes again for ``refuse_seconds`` (Mesos' default: 5 s)."""
    if isinstance(inverse_offer_ids, (str, bytes)):
        raise TypeError("inverse_offer_ids must be a list of ids, not a single string")
    ids = [as_id(i) for i in inverse_offer_ids]
    filters = None if refuse_seconds is None else Filters(refuse_seconds=float(refuse_seconds))
    if accept:
        return Call(type=CallType.ACCEPT_INVERSE_OFFERS, accept_inverse_offers=AcceptInverseOffers(
            inverse_offer_ids=ids, filters=filters))
    return Call(type=CallType.DECLINE_INVERSE_OFFERS, decline_inverse_offers=DeclineInverseOffers(
        inverse_offer_ids=ids, filters=filters))


def revive(roles: Iterable[str] | None = None) -> Call:
    """REVIVE offers for ``roles`` (None or empty: all the framework's roles)."""
    return Call(type=CallType.REVIVE, revive=Revive(roles=list(roles or [])))


def suppress(roles: Iterable[str] | None = None) -> Call:
    """SUPPRESS offers for ``roles`` (None or empty: all the framework's roles)."""
    return Call(type=CallType.SUPPRESS, suppress=Suppress(roles=list(roles or [])))


def kill(
    task_id: IdLike, agent_id: IdLike | None = None, grace_period: float | None = None
) -> Call:
    """KILL a task; ``grace_period`` (seconds) overrides the task's kill policy."""
    policy = None
    if grace_period is not None:
        policy = KillPolicy(grace_period=DurationInfo(nanoseconds=int(grace_period * 1e9)))
    return Call(
        type=CallType.KILL,
        kill=Kill(
            task_id=as_id(task_id),
            agent_id=None if agent_id is None else as_id(agent_id),
            kill_policy=policy,
        ),
    )


def shutdown(executor_id: IdLike, agent_id: IdLike) -> Call:
    return Call(
        type=CallType.SHUTDOWN,
        shutdown=Shutdown(executor_id=as_id(executor_id), agent_id=as_id(agent_id)),
    )


def acknowledge(agent_id: IdLike, task_id: IdLike, uuid: bytes) -> Call:
    return Call(
        type=CallType.ACKNOWLEDGE,
        acknowledge=Acknowledge(agent_id=as_id(agent_id), task_id=as_id(task_id), uuid=uuid),
    )


def acknowledge_operation_status(status: OperationStatus) -> Call:
    """Acknowledge an operation status update that carries a uuid."""
    assert status.operation_id is not None and status.uuid is not None
    return Call(type=CallType.ACKNOWLEDGE_OPERATION_STATUS,
                acknowledge_operation_status=AcknowledgeOperationStatus(
                    uuid=status.uuid.value, operation_id=status.operation_id,
                    agent_id=status.agent_id))


def reconcile_operations(operations: Iterable[tuple[IdLike, IdLike | None]] | None = None
                         ) -> Call:
    """RECONCILE_OPERATIONS for ``(operation_id, agent_id | None)`` pairs, or for every
    operation the master tracks for this framework (None or empty)."""
    entries = [ReconcileOperation(operation_id=as_id(o), agent_id=None if a is None
                                  else as_id(a)) for o, a in (operations or [])]
    return Call(type=CallType.RECONCILE_OPERATIONS,
                reconcile_operations=ReconcileOperations(operations=entries))


def reconcile(tasks: Iterable[tuple[IdLike, IdLike | None]] | None = None) -> Call:
    """RECONCILE: explicit for the given ``(task_id, agent_id | None)`` pairs,
    implicit (the master reports every task it knows of) when None or empty."""
    entries = [
        ReconcileTask(task_id=as_id(t), agent_id=None if a is None else as_id(a))
        for t, a in (tasks or [])
    ]
    return Call(type=CallType.RECONCILE, reconcile=Reconcile(tasks=entries))


def message(agent_id: IdLike, executor_id: IdLike, data: bytes) -> Call:
    return Call(
        type=CallType.MESSAGE,
        message=Message(agent_id=as_id(agent_id), executor_id=as_id(executor_id), data=data),
    )


def teardown() -> Call:
    return Call(type=CallType.TEARDOWN)
