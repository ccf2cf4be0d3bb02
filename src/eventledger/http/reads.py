"""Reading: streams, the global log, an aggregate's state then, read models, causes."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import pydantic
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import Response

from eventledger.causation import causal_chain
from eventledger.errors import InvalidInput, NotFound
from eventledger.http import models
from eventledger.http.auth import Principal, require
from eventledger.http.params import parse_time, time_query
from eventledger.http.problems import Problem
from eventledger.http.replica import read_model_queries, read_repository, read_store
from eventledger.projections import DocumentProjection, Range, SqlProjection

MAX_PAGE = 1000
READ = Depends(require("read"))
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "A parameter is not valid"},
    404: {"model": Problem, "description": "Not found"},
}


def add_routes(app: FastAPI) -> None:
    from eventledger.http.app import JSON, service_of

    @app.get(
        "/streams",
        tags=["streams"],
        summary="Streams, one page at a time, in id order",
        response_model=models.StreamPage,
        responses=ERRORS,
    )
    async def list_streams(
        request: Request,
        prefix: str | None = Query(
            None, max_length=255, pattern="^[^\x00]*$", description="e.g. `Order-`"
        ),
        after: str | None = Query(
            None, max_length=255, pattern="^[^\x00]*$", description="the last id of a page"
        ),
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        _: Principal = READ,
    ) -> Response:
        streams = await (await read_store(request)).list_streams(
            prefix=prefix, after=after, limit=limit + 1
        )
        return JSON(models.page_json(streams, limit, models.stream_json, lambda s: s.stream_id))

    @app.get(
        "/streams/{stream_id:path}/state",
        tags=["streams"],
        summary="An aggregate's state now, after a version, or at a time",
        response_model=models.StateOut,
        responses=ERRORS,
    )
    async def stream_state(
        request: Request,
        stream_id: str = STREAM_ID,
        version: int | None = Query(None, ge=1, le=(1 << 62)),
        at: str | None = time_query(
            "the state as it was then (with version: that version, which must have existed then)"
        ),
        _: Principal = READ,
    ) -> Response:
        service = service_of(request)
        aggregate_type, aggregate_id = service.application.aggregate_for(stream_id)
        aggregate = await (await read_repository(request, aggregate_type)).load(
            aggregate_id, version=version, as_of=parse_time(at, "at")
        )
        return JSON(
            {
                "stream_id": stream_id,
                "aggregate": aggregate_type.__name__,
                "id": aggregate.id,
                "version": aggregate.version,
                "state": aggregate.model_dump(mode="json"),
            }
        )

    @app.get(
        "/streams/{stream_id:path}",
        tags=["streams"],
        summary="The events of a stream, forwards or backwards, one page at a time",
        response_model=models.StreamEvents,
        responses=ERRORS,
    )
    async def read_stream(
        request: Request,
        stream_id: str = STREAM_ID,
        from_version: int | None = Query(None, ge=1, le=(1 << 62)),
        backwards: bool = False,
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        _: Principal = READ,
    ) -> Response:
        store = await read_store(request)
        version = await store.stream_version(stream_id)
        if version == 0:
            raise NotFound(f"no stream {stream_id!r}")
        events = [
            e
            async for e in store.read_stream(
                stream_id, from_version=from_version, backwards=backwards, limit=limit
            )
        ]
        following = None
        if len(events) == limit:
            step = -1 if backwards else 1
            candidate = events[-1].version + step
            following = candidate if 1 <= candidate <= version else None
        return JSON(
            {
                "stream_id": stream_id,
                "version": version,
                "items": [models.event_json(e) for e in events],
                "next_version": following,
            }
        )

    @app.get(
        "/events",
        tags=["events"],
        summary="The global log, in order, one page at a time",
        response_model=models.EventPage,
        responses=ERRORS,
    )
    async def read_all(
        request: Request,
        after: int = Query(0, ge=0, le=(1 << 63) - 1, description="a position you have seen"),
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        since: str | None = time_query("only events recorded at or after then"),
        until: str | None = time_query("only events recorded at or before then"),
        _: Principal = READ,
    ) -> Response:
        store = await read_store(request)
        window = {"since": parse_time(since, "since"), "until": parse_time(until, "until")}
        events = [e async for e in store.read_all(after=after, limit=limit + 1, **window)]
        return JSON(models.page_json(events, limit, models.event_json, lambda e: e.position))

    @app.get(
        "/events/{event_id}",
        tags=["events"],
        summary="One event, by its id",
        response_model=models.EventOut,
        responses=ERRORS,
    )
    async def read_event(request: Request, event_id: uuid.UUID, _: Principal = READ) -> Response:
        event = await (await read_store(request)).read_event(event_id)
        if event is None:
            raise NotFound(f"no event with id {event_id}")
        return JSON(models.event_json(event))

    @app.get(
        "/events/{event_id}/chain",
        tags=["events"],
        summary="What caused an event, and what it caused",
        response_model=models.ChainOut,
        responses=ERRORS,
    )
    async def event_chain(request: Request, event_id: uuid.UUID, _: Principal = READ) -> Response:
        chain = await causal_chain(await read_store(request), event_id)
        return JSON(models.chain_json(chain))

    @app.get(
        "/read-models",
        tags=["read models"],
        summary="The read models this service keeps",
        response_model=list[models.ReadModelOut],
    )
    async def read_models(request: Request, _: Principal = READ) -> Response:
        runner = service_of(request).runner
        listed = []
        for name in runner.names:
            projection = runner.get(name)
            if not projection.rebuildable:
                continue
            indexes = dict(projection.indexes) if isinstance(projection, DocumentProjection) else {}
            # The kind it is: the first of its classes that eventledger defines.
            kind = next(
                base.__name__
                for base in type(projection).__mro__
                if base.__module__ == "eventledger.projections.base"
            )
            tables = list(projection.tables) if isinstance(projection, SqlProjection) else []
            listed.append({"name": name, "kind": kind, "indexes": indexes, "tables": tables})
        return JSON(listed)

    @app.get(
        "/read-models/{name}/documents",
        tags=["read models"],
        summary="Documents of a document read model, filtered on its indexed fields",
        description=(
            "Filter with `field=value` (repeat for any of several values) and ranges with"
            " `field.gt`, `field.gte`, `field.lt`, `field.lte`, on the read model's indexed"
            " fields (see `GET /read-models`). Order with `order_by=field` or `-field`."
        ),
        response_model=models.DocumentPage,
        responses=ERRORS,
    )
    async def find_documents(
        request: Request,
        name: str,
        order_by: list[OrderBy] = ORDER_BY,
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        offset: int = Query(0, ge=0, le=1_000_000),
        _: Principal = READ,
    ) -> Response:
        queries = await _documents(request, name)
        where = _where(request, queries.indexes)
        for item in order_by:
            if item.removeprefix("-") not in queries.indexes:
                raise InvalidInput(
                    f"order_by {item!r}: order by an indexed field"
                    f" ({', '.join(sorted(queries.indexes)) or 'none'})"
                )
        items = await queries.find(where, order_by=order_by, limit=limit, offset=offset)
        total = await queries.count(where)
        return JSON({"items": items, "total": total, "limit": limit, "offset": offset})

    @app.get(
        "/read-models/{name}/documents/{doc_id}",
        tags=["read models"],
        summary="One document of a document read model",
        response_model=dict[str, Any],
        responses=ERRORS,
    )
    async def get_document(
        request: Request, name: str, doc_id: str, _: Principal = READ
    ) -> Response:
        doc = await (await _documents(request, name)).get(doc_id)
        if doc is None:
            raise NotFound(f"{name} has no document {doc_id!r}")
        return JSON(doc)

    @app.get(
        "/read-models/{name}/tables/{table}",
        tags=["read models"],
        summary="Rows of a SQL read model's table, one page at a time",
        description="Order with `order_by=column` or `-column` (repeat for several).",
        response_model=models.RowPage,
        responses=ERRORS,
    )
    async def table_rows(
        request: Request,
        name: str,
        table: str,
        order_by: list[OrderBy] = ORDER_BY,
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        offset: int = Query(0, ge=0, le=1_000_000),
        _: Principal = READ,
    ) -> Response:
        runner = service_of(request).runner
        if name not in runner.names or not isinstance(runner.get(name), SqlProjection):
            sql = [n for n in runner.names if isinstance(runner.get(n), SqlProjection)]
            raise NotFound(f"no SQL read model named {name!r}; known: {', '.join(sql) or 'none'}")
        columns, rows = await (await read_model_queries(request, name)).rows(
            runner.get(name), table, order_by=order_by, limit=limit, offset=offset
        )
        return JSON({"columns": columns, "items": rows, "limit": limit, "offset": offset})

    async def _documents(request: Request, name: str) -> Any:
        runner = service_of(request).runner
        if name not in runner.names or not isinstance(runner.get(name), DocumentProjection):
            documents = [n for n in runner.names if isinstance(runner.get(n), DocumentProjection)]
            raise NotFound(
                f"no document read model named {name!r}; known: {', '.join(documents) or 'none'}"
            )
        return (await read_model_queries(request, name)).documents(runner.get(name))


OrderBy = Annotated[
    str,
    pydantic.StringConstraints(
        pattern=r"^-?[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", max_length=200
    ),
]
ORDER_BY = Query(
    [],
    max_length=5,
    description="a field (or column) to order by, `-field` for descending; repeat for several",
)
_RANGES = ("gt", "gte", "lt", "lte")
STREAM_ID = Path(
    pattern=r"^[^\x00-\x1f\x7f-\x9f\s](?:[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s])?$",
    max_length=255,
    description="a stream id: no control characters, no white space at either end",
)
_RESERVED = {"order_by", "limit", "offset"}


def _where(request: Request, indexes: dict[str, str]) -> dict[str, Any]:
    where: dict[str, Any] = {}
    ranges: dict[str, dict[str, Any]] = {}
    for key in request.query_params:
        if key in _RESERVED:
            continue
        field, _, op = key.rpartition(".") if key.rsplit(".", 1)[-1] in _RANGES else (key, "", "")
        kind = indexes.get(field)
        if kind is None:
            raise InvalidInput(
                f"unknown query parameter {key!r}: filter on indexed fields"
                f" ({', '.join(sorted(indexes)) or 'none'}), with .gt, .gte, .lt or .lte for ranges"
            )
        values = [_value(field, kind, v) for v in request.query_params.getlist(key)]
        if op:
            if len(values) != 1:
                raise InvalidInput(f"{key} takes one value")
            ranges.setdefault(field, {})[op] = values[0]
        else:
            where[field] = values[0] if len(values) == 1 else values
    for field, bounds in ranges.items():
        if field in where:
            raise InvalidInput(f"{field}: filter by value or by range, not both")
        where[field] = Range(**bounds)
    return where


def _value(field: str, kind: str, text: str) -> Any:
    if kind == "number":
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InvalidInput(f"{field} is a number, not {text!r}") from None
        if not number.is_finite():
            raise InvalidInput(f"{field} is a finite number, not {text!r}")
        return number
    if kind == "boolean":
        if text not in ("true", "false"):
            raise InvalidInput(f"{field} is true or false, not {text!r}")
        return text == "true"
    return text
