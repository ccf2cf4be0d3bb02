"""Operating the read side: projection status, rebuilds and resets, the dead-letter
queue, process instances."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import Response

from eventledger.errors import InvalidInput, NotFound
from eventledger.failures import ProjectionFailed
from eventledger.http import models
from eventledger.http.auth import Principal, require
from eventledger.http.problems import HttpProblem, Problem
from eventledger.process import ProcessManager
from eventledger.projections import ProjectionRunner, ProjectionStatus

log = logging.getLogger("eventledger.http")

READ = Depends(require("read"))
LETTER_ID = Path(ge=1, le=(1 << 63) - 1, description="the dead letter's id")
ADMIN = Depends(require("admin"))
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Not possible for this kind of projection"},
    404: {"model": Problem, "description": "No such projection, dead letter or instance"},
    409: {"model": Problem, "description": "Not possible in the current state"},
}


def add_routes(app: FastAPI) -> None:
    from eventledger.http.app import JSON, service_of

    app.state.rebuilds = {}

    def known(request: Request, name: str) -> Any:
        runner = service_of(request).runner
        if name not in runner.names:
            raise NotFound(
                f"no projection or process named {name!r}; known: {', '.join(runner.names)}"
            )
        return runner

    @app.get(
        "/projections",
        tags=["projections"],
        summary="Every projection and process: position, lag, state, last error",
        response_model=list[models.ProjectionOut],
    )
    async def statuses(request: Request, _: Principal = READ) -> Response:
        runner = service_of(request).runner
        return JSON([models.status_json(s) for s in await runner.status()])

    @app.get(
        "/projections/{name}",
        tags=["projections"],
        summary="One projection's status (with rebuild progress)",
        response_model=models.ProjectionOut,
        responses=ERRORS,
    )
    async def status(request: Request, name: str, _: Principal = READ) -> Response:
        (found,) = await known(request, name).status(name)
        return JSON(models.status_json(found))

    @app.post(
        "/projections/{name}/rebuild",
        tags=["projections"],
        summary="Rebuild from the start into a fresh copy; queries switch when it caught up",
        status_code=202,
        response_model=models.ProjectionOut,
        responses=ERRORS,
    )
    async def rebuild(request: Request, name: str, _: Principal = ADMIN) -> Response:
        after = await start_rebuild(request.app, known(request, name), name)
        return JSON(models.status_json(after), status_code=202)

    @app.post(
        "/projections/{name}/reset",
        tags=["projections"],
        summary="Empty a read model and fill it again from the start (queries see it refill)",
        response_model=models.ProjectionOut,
        responses=ERRORS,
    )
    async def reset(request: Request, name: str, _: Principal = ADMIN) -> Response:
        runner = known(request, name)
        await runner.reset(name)
        (after,) = await runner.status(name)
        return JSON(models.status_json(after))

    @app.get(
        "/dead-letters",
        tags=["dead letters"],
        summary="Events parked after their handler kept failing",
        response_model=list[models.DeadLetterOut],
        responses=ERRORS,
    )
    async def dead_letters(
        request: Request,
        projection: str | None = Query(None, max_length=100),
        _: Principal = ADMIN,
    ) -> Response:
        runner = service_of(request).runner
        if projection is not None:
            known(request, projection)
        letters = await runner.dead_letters(projection)
        return JSON([models.letter_json(letter) for letter in letters])

    async def letter(request: Request, letter_id: int) -> Any:
        found = await service_of(request).store.read_side().dead_letter(letter_id)
        if found is None:
            raise NotFound(f"no dead letter {letter_id}")
        if found.status != "parked":
            raise HttpProblem(
                409, "resolved", "Resolved already", f"dead letter {letter_id} is {found.status}"
            )
        return found

    @app.post(
        "/dead-letters/{letter_id}/retry",
        tags=["dead letters"],
        summary="Handle a parked event again (after a fix); a stopped projection goes on",
        response_model=models.DeadLetterOut,
        responses=ERRORS,
    )
    async def retry(request: Request, letter_id: int = LETTER_ID, _: Principal = ADMIN) -> Response:
        parked = await letter(request, letter_id)
        try:
            await service_of(request).runner.retry(parked.subscription, letter_id)
        except ProjectionFailed as failed:
            raise HttpProblem(409, "failed-again", "The retry failed again", str(failed)) from None
        resolved = await service_of(request).store.read_side().dead_letter(letter_id)
        return JSON(models.letter_json(resolved or parked))

    @app.post(
        "/dead-letters/{letter_id}/skip",
        tags=["dead letters"],
        summary="Give up on a parked event; a projection stopped on it goes on after it",
        response_model=models.DeadLetterOut,
        responses=ERRORS,
    )
    async def skip(request: Request, letter_id: int = LETTER_ID, _: Principal = ADMIN) -> Response:
        parked = await letter(request, letter_id)
        await service_of(request).runner.skip(parked.subscription, letter_id)
        resolved = await service_of(request).store.read_side().dead_letter(letter_id)
        return JSON(models.letter_json(resolved or parked))

    def manager(request: Request, name: str) -> ProcessManager:
        runner = known(request, name)
        found = runner.get(name)
        if not isinstance(found, ProcessManager):
            raise NotFound(f"{name} is not a process manager")
        return found

    @app.get(
        "/processes/{name}/instances",
        tags=["processes"],
        summary="Instances of a process manager, most recently changed first",
        response_model=list[models.InstanceOut],
        responses=ERRORS,
    )
    async def instances(
        request: Request,
        name: str,
        status: str | None = Query(None, pattern="^(active|completed|failed)$"),
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=1_000_000),
        _: Principal = READ,
    ) -> Response:
        found = await manager(request, name).instances(
            service_of(request).store, status=status, limit=limit, offset=offset
        )
        return JSON([models.instance_json(i) for i in found])

    @app.get(
        "/processes/{name}/instances/{instance_id}",
        tags=["processes"],
        summary="One instance of a process manager",
        response_model=models.InstanceOut,
        responses=ERRORS,
    )
    async def instance(
        request: Request, name: str, instance_id: str, _: Principal = READ
    ) -> Response:
        found = await manager(request, name).instance(service_of(request).store, instance_id)
        if found is None:
            raise NotFound(f"{name} has no instance {instance_id!r}")
        return JSON(models.instance_json(found))


async def start_rebuild(app: Any, runner: ProjectionRunner, name: str) -> ProjectionStatus:
    """Start rebuilding `name` in the background; its status once the worker took it up
    (so that the answer shows the rebuild). Shared by the API and the admin page."""
    if not runner.get(name).rebuildable:
        raise InvalidInput(f"{name} is a process manager: a rebuild would send its commands")
    running: dict[str, asyncio.Task[int]] = app.state.rebuilds
    (current,) = await runner.status(name)
    if current.rebuild is not None or (name in running and not running[name].done()):
        raise HttpProblem(409, "rebuilding", "Rebuilding already", f"{name} is rebuilding")
    task = asyncio.ensure_future(runner.rebuild(name))
    task.add_done_callback(lambda t: _log_outcome(name, t))
    running[name] = task
    for _attempt in range(100):  # answer once the worker started it, so the status shows it
        (after,) = await runner.status(name)
        if after.rebuild is not None or after.generation != current.generation:
            break
        if task.done():
            task.result()  # it failed at once: say why
        await asyncio.sleep(0.01)
    return after


def _log_outcome(name: str, task: asyncio.Task[int]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("rebuild of %s failed: %s", name, error)
    else:
        log.info("rebuild of %s finished", name)


async def cancel_rebuilds(app: Any) -> None:
    for task in app.state.rebuilds.values():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
