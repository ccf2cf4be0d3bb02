"""The JSON the HTTP API answers with: pydantic models for the OpenAPI schema, and
the functions that make the same shapes from eventledger's objects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import pydantic

from eventledger.causation import CausalChain, CausalLink
from eventledger.commands import CommandResult
from eventledger.process import ProcessInstance
from eventledger.projections import DeadLetter, ProjectionStatus
from eventledger.records import Horizon, RecordedEvent, StreamInfo


class EventOut(pydantic.BaseModel):
    id: str
    stream_id: str
    version: int
    position: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


class EventPage(pydantic.BaseModel):
    items: list[EventOut]
    next_after: int | None = pydantic.Field(
        description="pass as `after` for the next page; null when there is nothing more now"
    )


class StreamEvents(pydantic.BaseModel):
    stream_id: str
    version: int = pydantic.Field(description="the stream's current version")
    items: list[EventOut]
    next_version: int | None = pydantic.Field(
        description="pass as `from_version` for the next page; null when this page is the last"
    )


class StreamOut(pydantic.BaseModel):
    stream_id: str
    version: int
    created_at: datetime
    updated_at: datetime


class StreamPage(pydantic.BaseModel):
    items: list[StreamOut]
    next_after: str | None = pydantic.Field(
        description="pass as `after` for the next page; null when there is nothing more"
    )


class StateOut(pydantic.BaseModel):
    stream_id: str
    aggregate: str
    id: str
    version: int
    state: dict[str, Any]


class WriteOut(pydantic.BaseModel):
    stream_id: str
    version: int
    position: int
    events: int


class CommandResultOut(pydantic.BaseModel):
    command_id: str
    command: str
    writes: list[WriteOut]
    position: int
    value: Any = None
    replayed: bool
    caught_up: bool | None = pydantic.Field(
        None, description="with ?wait=: whether the read model caught up within the timeout"
    )


class RebuildOut(pydantic.BaseModel):
    events_done: int
    events_total: int
    events_per_second: float
    seconds_left: float | None


class HolderOut(pydantic.BaseModel):
    transaction_id: int
    pid: int | None
    database: str | None
    user: str | None
    application_name: str | None
    state: str | None
    transaction_start: datetime | None
    query: str | None
    prepared_gid: str | None


class HorizonOut(pydantic.BaseModel):
    """Committed events readers wait for, because an older writer may still add events
    below them; `held_by` says who (see docs/ordering.md)."""

    committed_head: int
    visible_head: int
    events_held: int
    held_by: str | None
    holder: HolderOut | None


class ProjectionOut(pydantic.BaseModel):
    name: str
    state: str
    position: int
    head_position: int
    events_behind: int
    events_behind_capped: bool = pydantic.Field(
        False, description="events_behind is a lower bound (counting stops at 100,000)"
    )
    seconds_behind: float
    generation: int
    last_error: str | None
    active: bool
    rebuild: RebuildOut | None
    memory_bytes: int | None
    held_back: HorizonOut | None = None


class DeadLetterOut(pydantic.BaseModel):
    id: int
    projection: str
    position: int
    event_id: str
    stream_id: str
    event_type: str
    attempts: int
    error: str
    traceback: str
    status: str
    parked_at: datetime
    resolved_at: datetime | None


class LinkOut(pydantic.BaseModel):
    kind: str
    id: str
    name: str
    caused_by: str | None
    recorded_at: datetime
    actor: str | None
    stream_id: str | None
    version: int | None
    position: int | None


class ChainOut(pydantic.BaseModel):
    subject: LinkOut
    causes: list[LinkOut]
    effects: list[LinkOut]
    conversation: list[LinkOut]


class DocumentPage(pydantic.BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class ReadModelOut(pydantic.BaseModel):
    name: str
    kind: str
    indexes: dict[str, str] = pydantic.Field(description="document read models: queryable fields")
    tables: list[str] = pydantic.Field(description="SQL read models: their tables")


class RowPage(pydantic.BaseModel):
    columns: list[str]
    items: list[dict[str, Any]]
    limit: int
    offset: int


class InstanceOut(pydantic.BaseModel):
    process: str
    instance_id: str
    status: str
    state: dict[str, Any]
    compensations: list[dict[str, Any]]
    deadlines: dict[str, str]
    reason: str | None
    started_at: datetime
    updated_at: datetime


class CommandInfo(pydantic.BaseModel):
    name: str
    path: str
    description: str | None


T = TypeVar("T")


def page_json(
    fetched: Sequence[T],
    limit: int,
    render: Callable[[T], dict[str, Any]],
    cursor: Callable[[T], Any],
    next_key: str = "next_after",
) -> dict[str, Any]:
    """One page of a keyset-paged list: `fetched` holds up to ``limit + 1`` items (one
    more than the page, to know whether another page follows); `cursor` gives the
    value that asks for the next page (None on the last one)."""
    items = fetched[:limit]
    more = len(fetched) > limit
    return {
        "items": [render(item) for item in items],
        next_key: cursor(items[-1]) if more and items else None,
    }


def event_json(event: RecordedEvent) -> dict[str, Any]:
    return event.to_json()


def stream_json(stream: StreamInfo) -> dict[str, Any]:
    return {
        "stream_id": stream.stream_id,
        "version": stream.version,
        "created_at": stream.created_at.isoformat(),
        "updated_at": stream.updated_at.isoformat(),
    }


def result_json(result: CommandResult, caught_up: bool | None = None) -> dict[str, Any]:
    return {**result.to_json(), "replayed": result.replayed, "caught_up": caught_up}


def status_json(status: ProjectionStatus) -> dict[str, Any]:
    rebuild = status.rebuild
    return {
        "name": status.name,
        "state": status.state,
        "position": status.position,
        "head_position": status.head_position,
        "events_behind": status.events_behind,
        "events_behind_capped": status.behind_capped,
        "seconds_behind": status.seconds_behind,
        "generation": status.generation,
        "last_error": status.last_error,
        "active": status.active,
        "rebuild": None
        if rebuild is None
        else {
            "events_done": rebuild.events_done,
            "events_total": rebuild.events_total,
            "events_per_second": rebuild.events_per_second,
            "seconds_left": rebuild.seconds_left,
        },
        "memory_bytes": status.memory_bytes,
        "held_back": None if status.held_back is None else horizon_json(status.held_back),
    }


def horizon_json(horizon: Horizon) -> dict[str, Any]:
    """Committed events readers must wait for, and who holds them (docs/ordering.md)."""
    holder = horizon.holder
    return {
        "committed_head": horizon.committed_head,
        "visible_head": horizon.visible_head,
        "events_held": horizon.events_held,
        "held_by": None if holder is None else holder.describe(),
        "holder": None
        if holder is None
        else {
            "transaction_id": holder.transaction_id,
            "pid": holder.pid,
            "database": holder.database,
            "user": holder.user,
            "application_name": holder.application_name,
            "state": holder.state,
            "transaction_start": holder.transaction_start.isoformat()
            if holder.transaction_start
            else None,
            "query": holder.query,
            "prepared_gid": holder.prepared_gid,
        },
    }


def letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.id,
        "projection": letter.subscription,
        "position": letter.position,
        "event_id": str(letter.event_id),
        "stream_id": letter.stream_id,
        "event_type": letter.event_type,
        "attempts": letter.attempts,
        "error": letter.error,
        "traceback": letter.traceback,
        "status": letter.status,
        "parked_at": letter.parked_at.isoformat(),
        "resolved_at": None if letter.resolved_at is None else letter.resolved_at.isoformat(),
    }


def link_json(link: CausalLink) -> dict[str, Any]:
    return {
        "kind": link.kind,
        "id": link.id,
        "name": link.name,
        "caused_by": link.caused_by,
        "recorded_at": link.recorded_at.isoformat(),
        "actor": link.actor,
        "stream_id": link.stream_id,
        "version": link.version,
        "position": link.position,
    }


def chain_json(chain: CausalChain) -> dict[str, Any]:
    return {
        "subject": link_json(chain.subject),
        "causes": [link_json(link) for link in chain.causes],
        "effects": [link_json(link) for link in chain.effects],
        "conversation": [link_json(link) for link in chain.conversation],
    }


def instance_json(instance: ProcessInstance) -> dict[str, Any]:
    return {
        "process": instance.process,
        "instance_id": instance.instance_id,
        "status": instance.status,
        "state": instance.state,
        "compensations": instance.compensations,
        "deadlines": instance.deadlines,
        "reason": instance.reason,
        "started_at": instance.started_at.isoformat(),
        "updated_at": instance.updated_at.isoformat(),
    }
