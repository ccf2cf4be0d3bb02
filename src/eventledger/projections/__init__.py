"""Projections and read models: built from the log, rebuilt at will, never missing an event.

See :mod:`eventledger.projections.base` for the kinds of read model and
:mod:`eventledger.projections.runner` for how they run.
"""

from eventledger.failures import OnFailure, ProjectionFailed, RetryPolicy
from eventledger.projections._storage import DeadLetter, Range
from eventledger.projections.base import (
    Context,
    DocumentProjection,
    From,
    InMemoryProjection,
    Projection,
    SqlProjection,
    on,
)
from eventledger.projections.documents import DocumentQueries, Documents
from eventledger.projections.runner import (
    ProjectionRunner,
    ProjectionStatus,
    ProjectionTimeout,
    RebuildProgress,
    wait_until,
)

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
    "SqlProjection",
    "on",
    "wait_until",
]
