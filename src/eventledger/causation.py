"""Why did this happen, and what came of it: an event's causal chain.

Every message carries a correlation id (the request that started it all) and
a causation id (the message that directly caused it): a command's events name
the command, a process manager's commands name the event that triggered them.
:func:`causal_chain` gathers everything with the event's correlation id (events
from the log, commands from the command log) and follows causation both ways.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from eventledger.errors import NotFound
from eventledger.records import RecordedEvent
from eventledger.storage import CommandRecord
from eventledger.stores.base import EventStore

__all__ = ["CausalChain", "CausalLink", "causal_chain"]

MAX_LINKS = 10_000


@dataclass(frozen=True, slots=True)
class CausalLink:
    """One message in a chain: a command or an event."""

    kind: str
    """``"command"`` or ``"event"``."""
    id: str
    name: str
    """The command's name or the event's type."""
    caused_by: str | None
    """The id of the message that caused this one (None for where the chain starts)."""
    recorded_at: datetime
    actor: str | None = None
    stream_id: str | None = None
    version: int | None = None
    position: int | None = None

    def describe(self) -> str:
        where = f" {self.stream_id}@{self.version}" if self.stream_id else ""
        who = f" by {self.actor}" if self.actor else ""
        return f"{self.kind} {self.name}{where}{who} ({self.id})"


@dataclass(frozen=True, slots=True)
class CausalChain:
    subject: CausalLink
    causes: tuple[CausalLink, ...]
    """From where the chain starts down to the subject's direct cause."""
    effects: tuple[CausalLink, ...]
    """Everything the subject caused, directly or not (each after its cause)."""
    conversation: tuple[CausalLink, ...]
    """Every message with the subject's correlation id, each after its cause."""

    def render(self) -> str:
        """The conversation as an indented tree, the subject marked with ``>``."""
        children = _children(self.conversation)
        ids = {link.id for link in self.conversation}
        roots = [link for link in self.conversation if link.caused_by not in ids]
        lines: list[str] = []

        def walk(link: CausalLink, depth: int) -> None:
            mark = ">" if link.id == self.subject.id else " "
            lines.append(f"{mark} {'  ' * depth}{link.describe()}")
            for child in children.get(link.id, []):
                walk(child, depth + 1)

        for root in roots:
            walk(root, 0)
        return "\n".join(lines)


async def causal_chain(store: EventStore, event_id: object) -> CausalChain:
    """What caused the event with this id, and what it caused.

    Raises :class:`~eventledger.NotFound` for an unknown id. Looks at the first
    10,000 events and commands of the correlation.
    """
    event = await store.read_event(event_id)  # type: ignore[arg-type]  # checked there
    if event is None:
        raise NotFound(f"no event with id {event_id}")
    subject = _event_link(event)
    correlation = event.metadata.get("correlation_id")
    if not isinstance(correlation, str) or not correlation:
        return CausalChain(subject, (), (), (subject,))
    events = await store.read_correlated(correlation, limit=MAX_LINKS)
    commands = await store.command_log().correlated(correlation, MAX_LINKS)
    found = sorted(
        [*(_event_link(e) for e in events), *(_command_link(c) for c in commands)],
        key=lambda link: (link.recorded_at, link.position or 0),
    )
    if all(link.id != subject.id for link in found):
        found.append(subject)
    by_id = {link.id: link for link in found}
    causes: list[CausalLink] = []
    cursor = by_id[subject.id].caused_by
    while cursor in by_id and all(cursor != c.id for c in causes) and cursor != subject.id:
        causes.append(by_id[cursor])
        cursor = by_id[cursor].caused_by
    causes.reverse()
    children = _children(found)
    roots = [link for link in found if link.caused_by not in by_id]
    conversation = _depth_first(roots, children)
    effects = _depth_first(children.get(subject.id, []), children)
    return CausalChain(subject, tuple(causes), tuple(effects), tuple(conversation))


def _depth_first(
    starts: list[CausalLink], children: dict[str, list[CausalLink]]
) -> list[CausalLink]:
    """Each link after its cause; siblings in time order; every link once."""
    ordered: list[CausalLink] = []
    seen: set[str] = set()
    stack = list(reversed(starts))
    while stack:
        link = stack.pop()
        if link.id in seen:
            continue
        seen.add(link.id)
        ordered.append(link)
        stack.extend(reversed(children.get(link.id, [])))
    return ordered


def _children(links: Iterable[CausalLink]) -> dict[str, list[CausalLink]]:
    children: dict[str, list[CausalLink]] = {}
    for link in links:
        if link.caused_by is not None:
            children.setdefault(link.caused_by, []).append(link)
    return children


def _event_link(event: RecordedEvent) -> CausalLink:
    causation = event.metadata.get("causation_id")
    actor = event.metadata.get("actor")
    return CausalLink(
        "event",
        str(event.id),
        event.type,
        causation if isinstance(causation, str) and causation != str(event.id) else None,
        event.recorded_at,
        actor if isinstance(actor, str) else None,
        event.stream_id,
        event.version,
        event.position,
    )


def _command_link(command: CommandRecord) -> CausalLink:
    own = str(command.id)
    return CausalLink(
        "command",
        own,
        command.name,
        None if command.causation_id == own else command.causation_id,
        command.recorded_at,
        command.actor,
    )
