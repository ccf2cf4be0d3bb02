"""Pages that watch and work the read side: the overview, projections (rebuild, reset),
the dead-letter queue (retry, skip) and process instances."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from fastapi import FastAPI
from starlette.responses import RedirectResponse, Response

from eventledger.admin.access import checked_form, safe_next
from eventledger.admin.pages import PAGE_SIZE, Page, add_page, int_param, show, text_param
from eventledger.admin.sampler import Sampler
from eventledger.errors import InvalidInput, NotFound
from eventledger.failures import ProjectionFailed
from eventledger.http.operations import start_rebuild
from eventledger.http.problems import HttpProblem
from eventledger.process import ProcessManager
from eventledger.projections import ProjectionStatus

__all__ = ["add_operating_pages"]

PARKED_COUNTED = 1000


def add_operating_pages(app: FastAPI) -> None:
    add_page(app, "/admin", overview)
    add_page(app, "/admin/projections", projections)
    add_page(app, "/admin/projections/{name}/{action}", projection_action, ("POST",))
    add_page(app, "/admin/dead-letters", dead_letters)
    add_page(app, "/admin/dead-letters/{letter_id}", dead_letter)
    add_page(app, "/admin/dead-letters/{letter_id}/{action}", letter_action, ("POST",))
    add_page(app, "/admin/processes", processes)
    add_page(app, "/admin/processes/{name}", instances)
    add_page(app, "/admin/processes/{name}/instances/{instance_id:path}", instance)


def _sampler(page: Page) -> Sampler:
    sampler: Sampler = page.request.app.state.sampler
    return sampler


def _kinds(page: Page, statuses: list[ProjectionStatus]) -> dict[str, str]:
    runner = page.service.runner
    return {
        s.name: "process" if isinstance(runner.get(s.name), ProcessManager) else "projection"
        for s in statuses
    }


async def overview(page: Page) -> Response:
    service = page.service
    head = await service.store.head_position()
    horizon = await service.store.horizon()
    statuses = await service.runner.status()
    parked = await service.store.read_side().dead_letters(None, "parked", limit=PARKED_COUNTED + 1)
    sampler = _sampler(page)
    rates = sampler.appended_per_second()
    return show(
        page,
        "overview.html",
        "_overview.html",
        head=head,
        horizon=horizon,
        statuses=statuses,
        kinds=_kinds(page, statuses),
        parked=len(parked),
        parked_capped=len(parked) > PARKED_COUNTED,
        rates=rates,
        minutes=round(len(rates) * sampler.every / 60, 1),
        slots=sampler.samples.maxlen or len(rates),
        sample_seconds=sampler.every,
    )


async def projections(page: Page) -> Response:
    statuses = await page.service.runner.status()
    sampler = _sampler(page)
    return show(
        page,
        "projections.html",
        "_projections.html",
        statuses=statuses,
        kinds=_kinds(page, statuses),
        rebuildable={s.name: page.service.runner.get(s.name).rebuildable for s in statuses},
        rates={s.name: sampler.handled_per_second(s.name) for s in statuses},
    )


async def projection_action(page: Page) -> Response:
    name = page.request.path_params["name"]
    action = page.request.path_params["action"]
    runner = page.service.runner
    if name not in runner.names:
        raise NotFound(f"no projection or process named {name!r}")
    if action not in ("rebuild", "reset"):
        raise NotFound(f"no action {action!r}")
    form = await checked_form(page.request, page.viewer)
    if form.get("confirm") != "yes":
        return page.render(
            "confirm.html",
            action=action,
            name=name,
            target=f"/admin/projections/{quote(name)}/{action}",
            back="/admin/projections",
        )
    if action == "rebuild":
        await start_rebuild(page.request.app, runner, name)
        done = f"rebuilding {name}"
    else:
        await runner.reset(name)
        done = f"{name} was reset; it fills again from the start"
    return RedirectResponse(
        _with_notice("/admin/projections", "/admin/projections", done) + f"#{quote(name)}", 303
    )


def _with_notice(back: str | None, default: str, notice: str) -> str:
    """Where a button's form goes back to (a list of the admin page, with its filters),
    saying what was done."""
    target = safe_next(back) if back else default
    parts = urlsplit(target)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "done"] + [("done", notice)]
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


async def dead_letters(page: Page) -> Response:
    runner = page.service.runner
    projection = text_param(page, "projection", 100)
    if projection is not None and projection not in runner.names:
        raise NotFound(f"no projection or process named {projection!r}")
    after = int_param(page, "after", 0) or 0
    letters = await runner.dead_letters(projection, after=after, limit=PAGE_SIZE + 1)
    more = len(letters) > PAGE_SIZE
    letters = letters[:PAGE_SIZE]
    return page.render(
        "dead_letters.html",
        back=_here(page),
        letters=letters,
        names=runner.names,
        projection=projection,
        next_after=letters[-1].id if more else None,
    )


async def _letter(page: Page) -> int:
    text = page.request.path_params["letter_id"]
    if not text.isdigit() or int(text) >= 1 << 63:
        raise NotFound(f"no dead letter {text!r:.40}")
    return int(text)


async def dead_letter(page: Page) -> Response:
    letter_id = await _letter(page)
    letter = await page.service.store.read_side().dead_letter(letter_id)
    if letter is None:
        raise NotFound(f"no dead letter {letter_id}")
    return page.render("dead_letter.html", letter=letter, back="/admin/dead-letters")


async def letter_action(page: Page) -> Response:
    letter_id = await _letter(page)
    action = page.request.path_params["action"]
    if action not in ("retry", "skip"):
        raise NotFound(f"no action {action!r}")
    form = await checked_form(page.request, page.viewer)
    letter = await page.service.store.read_side().dead_letter(letter_id)
    if letter is None:
        raise NotFound(f"no dead letter {letter_id}")
    if letter.status != "parked":
        raise HttpProblem(
            409, "resolved", "Resolved already", f"dead letter {letter_id} is {letter.status}"
        )
    runner = page.service.runner
    if action == "retry":
        try:
            await runner.retry(letter.subscription, letter_id)
        except ProjectionFailed as failed:
            raise HttpProblem(409, "failed-again", "The retry failed again", str(failed)) from None
        done = f"dead letter {letter_id} was handled again"
    else:
        await runner.skip(letter.subscription, letter_id)
        done = f"dead letter {letter_id} was skipped"
    return RedirectResponse(_with_notice(form.get("back"), "/admin/dead-letters", done), 303)


def _here(page: Page) -> str:
    url = page.request.url
    query = urlencode([(k, v) for k, v in parse_qsl(url.query) if k != "done"])
    return url.path + (f"?{query}" if query else "")


def _managers(page: Page) -> dict[str, ProcessManager]:
    runner = page.service.runner
    return {
        name: found
        for name in runner.names
        if isinstance(found := runner.get(name), ProcessManager)
    }


async def processes(page: Page) -> Response:
    managers = _managers(page)
    statuses = [s for s in await page.service.runner.status() if s.name in managers]
    return page.render("processes.html", statuses=statuses, managers=managers)


def _manager(page: Page) -> ProcessManager:
    name = page.request.path_params["name"]
    manager = _managers(page).get(name)
    if manager is None:
        raise NotFound(f"no process manager named {name!r}")
    return manager


async def instances(page: Page) -> Response:
    manager = _manager(page)
    status = text_param(page, "status", 20)
    if status not in (None, "active", "completed", "failed"):
        raise InvalidInput(f"status is active, completed or failed, not {status!r}")
    cursor = None
    after_text = text_param(page, "after", 300)
    if after_text is not None:
        moment, _, last = after_text.partition("|")
        try:
            cursor = (datetime.fromisoformat(moment), last)
        except ValueError:
            raise InvalidInput(f"after is a page cursor, not {after_text!r:.60}") from None
    found = await manager.instances(
        page.service.store, status=status, limit=PAGE_SIZE + 1, after=cursor
    )
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    following = None
    if more:
        following = f"{found[-1].updated_at.isoformat()}|{found[-1].instance_id}"
    return page.render(
        "instances.html", manager=manager, instances=found, status=status, following=following
    )


async def instance(page: Page) -> Response:
    manager = _manager(page)
    instance_id = page.request.path_params["instance_id"]
    found = await manager.instance(page.service.store, instance_id)
    if found is None:
        raise NotFound(f"{manager.name} has no instance {instance_id!r}")
    return page.render(
        "instance.html",
        manager=manager,
        instance=found,
        stream_id=f"{manager.category}-{instance_id}",
    )
