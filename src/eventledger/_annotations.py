"""Which types a handler takes, read from its annotation: one implementation for
aggregates (``@applies``), projections (``@on``) and command handlers."""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar, Union

from eventledger.errors import InvalidInput

__all__ = ["annotated_types"]

T = TypeVar("T")


def annotated_types(
    function: Callable[..., Any],
    base: type[T],
    *,
    position: int,
    owner: type | None = None,
    arity: tuple[int, ...] = (),
    usage: str,
    instead: str,
) -> tuple[type[T], ...]:
    """The classes the parameter at `position` is annotated with (a class, or a union of
    them), each a subclass of `base`.

    `owner` is the class the function is defined in (its names resolve the
    annotation); `arity` the parameter counts allowed; `usage` how the handler is
    written (for errors); `instead` how to name the types when the annotation
    cannot say them.

    >>> class Base: ...
    >>> class A(Base): ...
    >>> class B(Base): ...
    >>> def handler(self: object, event: A | B) -> None: ...
    >>> [t.__name__ for t in annotated_types(handler, Base, position=1, usage="(self, event)",
    ...                                       instead="@on(A)")]
    ['A', 'B']
    """
    where = f"{owner.__name__}.{function.__name__}" if owner else function.__name__
    parameters = list(inspect.signature(function).parameters.values())
    if len(parameters) <= position or (arity and len(parameters) not in arity):
        raise InvalidInput(f"{where}: a handler takes {usage}")
    try:
        hints = typing.get_type_hints(function, localns=dict(vars(owner)) if owner else None)
    except NameError as error:
        raise InvalidInput(
            f"{where}: cannot resolve the annotation ({error}); name the types instead: {instead}"
        ) from None
    annotation = hints.get(parameters[position].name)
    if annotation is None:
        raise InvalidInput(
            f"{where}: annotate the {parameters[position].name} parameter, or name the types:"
            f" {instead}"
        )
    options = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (Union, types.UnionType)
        else (annotation,)
    )
    for option in options:
        if not (isinstance(option, type) and issubclass(option, base)):
            article = "an" if base.__name__[:1] in "AEIOU" else "a"
            raise InvalidInput(f"{where}: {option!r} is not {article} {base.__name__} subclass")
    return tuple(options)
