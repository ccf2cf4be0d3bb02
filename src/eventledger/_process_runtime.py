"""How a process manager runs: one batch of events handled (its commands sent) before the
transaction, then its instances and deadlines written with the checkpoint."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pydantic

from eventledger.commands import CommandBus
from eventledger.errors import DomainError, IdempotencyKeyReused, InvalidInput, NotFound
from eventledger.failures import RetryPolicy
from eventledger.observability import tracing
from eventledger.process import (
    ACTIVE,
    DeadlineReached,
    Process,
    ProcessManager,
    _check_instance_id,
    _Instance,
    _maybe_await,
)
from eventledger.projections.base import RunScope
from eventledger.records import RecordedEvent
from eventledger.storage import InstanceRow, ProcessStorage, TimeoutRow
from eventledger.stores.base import StoreTransaction
from eventledger.subscriptions import HandlerFailed

__all__ = ["ProcessBatch", "ProcessConsumer"]

log = logging.getLogger("eventledger.process")


class ProcessConsumer:
    """A process manager as a subscription consumer (see :mod:`eventledger.subscriptions`)."""

    durable = True
    generation = 1

    def __init__(self, manager: ProcessManager, scope: RunScope, bus: CommandBus) -> None:
        self.projection = manager
        self.scope = scope
        self.bus = bus
        self.name = manager.name
        self.retry: RetryPolicy = manager.retry
        self.storage = scope.store.process_storage()

    def handles(self, record: RecordedEvent) -> bool:
        return self.projection.handles(record)

    async def activate(self, tx: StoreTransaction | None) -> None:
        pass

    def batch(self, records: Sequence[RecordedEvent]) -> ProcessBatch:
        return ProcessBatch(self.projection, self.storage, self.bus, records)

    async def before_step(self) -> None:
        await self.projection.fire_due_deadlines(self.scope.store, datetime.now(UTC))

    def memory_bytes(self) -> int | None:
        return None


class ProcessBatch:
    """One batch of events for a process manager: handled (and their commands sent)
    first, then written in the transaction that moves the checkpoint."""

    def __init__(
        self,
        manager: ProcessManager,
        storage: ProcessStorage,
        bus: CommandBus,
        records: Sequence[RecordedEvent],
    ) -> None:
        self.manager = manager
        self.storage = storage
        self.bus = bus
        self.records = records
        self._cache: dict[str, _Instance | None] = {}
        self._dirty: set[str] = set()
        self._scheduled: dict[uuid.UUID, TimeoutRow] = {}
        self._cancelled: set[uuid.UUID] = set()

    async def prefetch(self, records: Sequence[RecordedEvent]) -> None:
        ids = []
        for record in records:
            if record.type == DeadlineReached.event_type:
                ids.append(str(record.data.get("instance_id")))
            else:
                head, sep, tail = record.stream_id.partition("-")
                ids.append(tail if sep else head)
        wanted = [i for i in dict.fromkeys(ids) if i not in self._cache]
        found = await self.storage.instances(self.manager.name, wanted)
        for instance_id in wanted:
            row = found.get(instance_id)
            self._cache[instance_id] = None if row is None else _Instance(self.manager, row)

    async def _load(self, instance_id: str) -> _Instance | None:
        if instance_id not in self._cache:
            found = await self.storage.instances(self.manager.name, [instance_id])
            row = found.get(instance_id)
            self._cache[instance_id] = None if row is None else _Instance(self.manager, row)
        return self._cache[instance_id]

    async def handle(self, record: RecordedEvent) -> None:
        manager = self.manager
        if record.type == DeadlineReached.event_type:
            await self._deadline(record)
            return
        found = manager._handler_for_type(record.type)
        if found is None:
            return
        attribute, wants_process = found
        event: Any = record
        if record.type not in manager.__handlers__:
            event = manager.event_registry.decode(record)
        instance_id = manager.instance_id(record, event)
        if instance_id is None:
            return
        _check_instance_id(instance_id)
        instance = await self._load(instance_id)
        role = manager.__roles__.get(attribute, "continue")
        if instance is None:
            if role != "start":
                return  # not started: nothing to continue
            now = record.recorded_at
            row = InstanceRow(manager.name, instance_id, ACTIVE, {}, {}, now, now)
            try:
                instance = _Instance(manager, row)
            except pydantic.ValidationError as error:
                raise InvalidInput(
                    f"{type(manager).__name__}.state_type needs defaults for every field"
                    f" to start an instance: {error}"
                ) from None
            self._cache[instance_id] = instance
        elif instance.status != ACTIVE:
            return  # ended: later events change nothing
        process: Process[Any] = Process(manager, instance, record)
        method = getattr(manager, attribute)
        await _maybe_await(method(event, process) if wants_process else method(event))
        if role == "end":
            process.complete()
        await self._carry_out(instance, process, record)

    async def _deadline(self, record: RecordedEvent) -> None:
        data = record.data
        instance = await self._load(str(data["instance_id"]))
        name = str(data["timeout"])
        if instance is None or instance.status != ACTIVE:
            return
        pending = instance.timeouts.get(name)
        if pending is None or pending["id"] != data["timeout_id"]:
            return  # cancelled or replaced since: ignore
        del instance.timeouts[name]
        self._cancelled.add(uuid.UUID(pending["id"]))
        process: Process[Any] = Process(self.manager, instance, record)
        method = getattr(self.manager, self.manager.__timeout_handlers__[name])
        await _maybe_await(method(process))
        await self._carry_out(instance, process, record)

    async def _carry_out(
        self, instance: _Instance, process: Process[Any], record: RecordedEvent
    ) -> None:
        manager = self.manager
        self._dirty.add(process.instance_id)
        for name in process._cancelled:
            pending = instance.timeouts.pop(name, None)
            if pending is not None:
                self._cancelled.add(uuid.UUID(pending["id"]))
        correlation = record.metadata.get("correlation_id") or str(record.id)
        metadata = {
            "correlation_id": correlation,
            "causation_id": str(record.id),
            "actor": f"process:{manager.name}",
        }
        for name, due_at in process._scheduled:
            replaced = instance.timeouts.get(name)
            if replaced is not None:
                self._cancelled.add(uuid.UUID(replaced["id"]))
            # Derived from the event: handling it again schedules the same deadline.
            timeout_id = uuid.uuid5(record.id, f"deadline:{name}")
            instance.timeouts[name] = {"id": str(timeout_id), "due_at": due_at.isoformat()}
            self._cancelled.discard(timeout_id)
            self._scheduled[timeout_id] = TimeoutRow(
                timeout_id, manager.name, process.instance_id, name, due_at, metadata
            )
        await self._send(instance, process, record, correlation)
        if instance.status != ACTIVE:
            for pending in instance.timeouts.values():
                self._cancelled.add(uuid.UUID(pending["id"]))
            instance.timeouts = {}
        for timeout_id in self._cancelled:
            self._scheduled.pop(timeout_id, None)

    async def _send(
        self, instance: _Instance, process: Process[Any], record: RecordedEvent, correlation: str
    ) -> None:
        manager = self.manager
        index = 0
        while index < len(process._sends):
            command, compensation = process._sends[index]
            try:
                await self.bus.send(
                    command,
                    idempotency_key=f"{manager.name}:{record.id}:{index}",
                    correlation_id=correlation,
                    causation_id=str(record.id),
                    actor=f"process:{manager.name}",
                )
            except IdempotencyKeyReused as reused:
                # Sent before with other data: the handler is not deterministic. The
                # first command stands (it is what happened).
                log.warning("%s: %s; keeping the first command", manager.name, reused)
            except (DomainError, NotFound) as error:
                dropped = process._sends[index + 1 :]
                del process._sends[index + 1 :]
                log.info(
                    "%s %s: %s refused (%s); %d later command(s) not sent",
                    manager.name,
                    process.instance_id,
                    command.command_name,
                    error,
                    len(dropped),
                )
                await _maybe_await(manager.on_rejected(command, error, process))
                index += 1
                continue
            if compensation is not None:
                instance.compensations.append(
                    {
                        "command": compensation.command_name,
                        "payload": compensation.model_dump(mode="json"),
                    }
                )
            index += 1

    async def prepare(self) -> None:
        # Handling first (each command a transaction of its own), then the instances and
        # the checkpoint together. Dying in between only repeats sends, which the
        # commands' idempotency keys turn into no-ops.
        await self.prefetch(self.records)
        for index, record in enumerate(self.records):
            try:
                # The step continues the trace that appended the event: the request,
                # its events, this step and the commands it sends form one trace.
                with tracing.span(
                    f"process {self.manager.name} handles {record.type}",
                    kind="consumer",
                    parent=record.metadata,
                    attributes={
                        "eventledger.process": self.manager.name,
                        "eventledger.event_id": str(record.id),
                        "eventledger.stream_id": record.stream_id,
                    },
                ):
                    await self.handle(record)
            except Exception as error:
                raise HandlerFailed(index, error) from error

    async def commit(self, tx: StoreTransaction | None) -> None:
        assert tx is not None
        now = datetime.now(UTC)
        rows = [
            instance.to_row(now)
            for instance_id in self._dirty
            if (instance := self._cache.get(instance_id)) is not None
        ]
        await self.storage.save(tx, rows, self._scheduled.values(), self._cancelled)
