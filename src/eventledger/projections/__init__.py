"""Projections and read models: built from the log, rebuilt at will, never missing an event.

See :mod:`eventledger.projections.base` for the kinds of read model,
:mod:`eventledger.projections.runner` for how they run (each a consumer of
:mod:`eventledger.subscriptions`) and :mod:`eventledger.projections.queries` for
how they are read.
"""

from eventledger.errors import ProjectionFailed, ProjectionTimeout
from eventledger.failures import OnFailure, RetryPolicy
from eventledger.projections.base import (
    Context,
    DocumentProjection,
    From,
    InMemoryProjection,
    Projection,
    RunScope,
    SqlProjection,
    on,
)
from eventledger.projections.documents import DocumentQueries, Documents
from eventledger.projections.runner import (
    ProjectionRunner,
    ProjectionStatus,
    wait_until,
)
from eventledger.storage import DeadLetter, Range
from eventledger.subscriptions import RebuildProgress

__all__ = [
    "Context",
    "DeadLetter",
    "DocumentProjection",
    "DocumentQueries",
    "Documents",
    "From",
    "InMemoryProjection",
    "OnFailure",
    "Projection",
    "ProjectionFailed",
    "ProjectionRunner",
    "ProjectionStatus",
    "ProjectionTimeout",
    "Range",
    "RebuildProgress",
    "RetryPolicy",
    "RunScope",
    "SqlProjection",
    "on",
    "wait_until",
]
