"""How a personal field is declared, and what stands in its place once its subject is
forgotten (examples in :mod:`eventledger.personal`).

>>> Redacted.from_json({"$redacted": "c-1"})
Redacted(subject='c-1')
>>> redaction("c-1")
{'$redacted': 'c-1'}
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic_core import core_schema

from eventledger.errors import InvalidInput

__all__ = [
    "REDACTED_KEY",
    "Personal",
    "Redacted",
    "personal_fields",
    "redaction",
    "without_personal",
]

REDACTED_KEY = "$redacted"
"""The key of the JSON object that replaces a forgotten value: ``{"$redacted": subject}``."""


@dataclass(frozen=True, slots=True)
class Redacted:
    """What a personal value reads as once its subject was forgotten: the value is gone
    for good, the subject's id remains. In JSON it is ``{"$redacted": "<subject>"}``.

    Declare a personal field as ``str | Redacted`` so that the type checker makes
    domain code handle it (a field declared ``str`` still accepts the marker when it
    is read, so that old events always load).
    """

    subject: str

    def to_json(self) -> dict[str, str]:
        return {REDACTED_KEY: self.subject}

    def __str__(self) -> str:
        return "[forgotten]"

    @classmethod
    def from_json(cls, value: Any) -> Redacted | None:
        """The marker `value` is, or None when it is no marker."""
        if (
            isinstance(value, dict)
            and len(value) == 1
            and isinstance(subject := value.get(REDACTED_KEY), str)
        ):
            return cls(subject)
        return None

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: pydantic.GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return _redacted_schema()

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: pydantic.GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return {
            "type": "object",
            "title": "Redacted",
            "description": "A personal value whose subject was forgotten.",
            "properties": {REDACTED_KEY: {"type": "string"}},
            "required": [REDACTED_KEY],
        }


def _validate_redacted(value: Any) -> Redacted:
    if isinstance(value, Redacted):
        return value
    found = Redacted.from_json(value)
    if found is None:
        raise ValueError(f"not a redaction marker ({{{REDACTED_KEY!r}: subject}})")
    return found


def _marker_as_redacted(value: Any) -> Any:
    return Redacted.from_json(value) or value


def _redacted_schema() -> core_schema.CoreSchema:
    return core_schema.no_info_plain_validator_function(
        _validate_redacted,
        serialization=core_schema.plain_serializer_function_ser_schema(
            lambda value: value.to_json() if isinstance(value, Redacted) else value
        ),
    )


def redaction(subject: str) -> dict[str, str]:
    """The JSON that replaces a forgotten value of `subject`."""
    return {REDACTED_KEY: subject}


@dataclass(frozen=True, slots=True)
class Personal:
    """Marks an event field as personal data of the subject named by another field
    (a dotted path into the event's data, ``"customer_id"`` or ``"customer.id"``).

    Its value is encrypted with that subject's own key before it is stored, read
    back in clear, and reads as :class:`Redacted` once the subject is forgotten
    (:func:`eventledger.personal.forget`). Any JSON value can be personal (a string,
    a number, an object such as an address)."""

    subject: str

    def __post_init__(self) -> None:
        if not isinstance(self.subject, str) or not self.subject.strip("."):
            raise InvalidInput(
                f"Personal(subject=...) names the field that holds the subject's id, not"
                f" {self.subject!r}"
            )

    def __get_pydantic_core_schema__(
        self, source: Any, handler: pydantic.GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        inner = handler(source)
        if not _accepts_redacted(source):
            inner = core_schema.union_schema([_redacted_schema(), inner])
        # A marker is a Redacted, whatever else the field takes (a dict field would
        # otherwise take the marker's JSON as a dict).
        return core_schema.no_info_before_validator_function(_marker_as_redacted, inner)


def _accepts_redacted(annotation: Any) -> bool:
    return annotation is Redacted or Redacted in typing.get_args(annotation)


def personal_fields(model: type[pydantic.BaseModel]) -> dict[str, str]:
    """The personal fields of a model (dotted paths, nested models included) and the
    path of each one's subject field."""
    cached = model.__dict__.get("__personal_fields__")
    if cached is not None:
        return dict(cached)
    found: dict[str, str] = {}
    _collect(model, "", found, set())
    if model.__pydantic_complete__:  # an unfinished model (forward refs) may say more later
        type.__setattr__(model, "__personal_fields__", found)
    return dict(found)


def without_personal(model: type[pydantic.BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """`data` (a dump of `model`) with each personal value replaced by the redaction
    marker: what is kept of a command, whose payload is not sealed."""
    fields = personal_fields(model)
    if not fields:
        return data
    masked = dict(data)
    for path, subject_path in fields.items():
        _, subject = value_at(data, subject_path)
        found, value = value_at(masked, path)
        if not found or value is None:
            continue
        masked = with_value(masked, path, redaction(str(subject or "")))
    return masked


def value_at(data: Any, path: str) -> tuple[bool, Any]:
    """Whether `data` holds a value at the dotted `path`, and the value."""
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return False, None
        data = data[part]
    return True, data


def with_value(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `data` with `value` at the dotted `path` (copying only the dicts on the
    way)."""
    head, _, rest = path.partition(".")
    copy = dict(data)
    if rest:
        inner = copy.get(head)
        copy[head] = with_value(inner if isinstance(inner, dict) else {}, rest, value)
    else:
        copy[head] = value
    return copy


def _collect(
    model: type[pydantic.BaseModel], prefix: str, found: dict[str, str], seen: set[type]
) -> None:
    if model in seen:
        return
    seen.add(model)
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = f"{prefix}{key}"
        marks = [m for m in info.metadata if isinstance(m, Personal)]
        if marks:
            found[path] = marks[-1].subject
            continue
        nested = info.annotation
        for candidate in (nested, *typing.get_args(nested)):
            if isinstance(candidate, type) and issubclass(candidate, pydantic.BaseModel):
                _collect(candidate, f"{path}.", found, seen)
