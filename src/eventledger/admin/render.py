"""Turning values into HTML for the admin page: templates, times, JSON, charts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import jinja2
from markupsafe import Markup
from starlette.responses import HTMLResponse

from eventledger.http.security import HTML_POLICY

__all__ = ["bar_chart", "environment", "render", "sparkline", "when"]

_environment: jinja2.Environment | None = None


def environment() -> jinja2.Environment:
    """The templates (in the package), escaping everything by default."""
    global _environment
    if _environment is None:
        made = jinja2.Environment(
            loader=jinja2.PackageLoader("eventledger.admin", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        made.filters.update(when=when, pretty=pretty, number=number, ago=ago)
        made.globals.update(bar_chart=bar_chart, sparkline=sparkline)
        _environment = made
    return _environment


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = environment().get_template(template).render(**context)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": HTML_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


def when(moment: datetime | str | None) -> Markup:
    """A time as ``<time>``: UTC in the text (the page's script shows it in the viewer's
    zone), UTC on hover."""
    if moment is None:
        return Markup("&ndash;")
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(utc.isoformat(), text, text)


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "\u2013"
    if seconds < 1:
        return "now" if seconds < 0.05 else f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def number(value: float | int | None) -> str:
    if value is None:
        return "\u2013"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def bar_chart(
    values: Sequence[float], label: str, slots: int = 120, width: int = 600, height: int = 120
) -> Markup:
    """An SVG bar chart, one bar per value, oldest first, the newest at the right edge
    of `slots` places; described for screen readers."""
    if not values:
        return Markup('<p class="muted">{}</p>').format(f"{label}: no samples yet")
    values = values[-slots:]
    top = max(values) or 1.0
    step = width / max(slots, len(values))
    first = max(slots, len(values)) - len(values)
    bars = []
    for index, value in enumerate(values, start=first):
        h = 0.0 if value <= 0 else max(1.0, value / top * (height - 14))
        bars.append(
            Markup('<rect x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>').format(
                f"{index * step:.1f}",
                f"{height - h:.1f}",
                f"{max(step - 1, 1):.1f}",
                f"{h:.1f}",
                f"{value:,.1f}",
            )
        )
    summary = f"{label}: now {values[-1]:,.1f}, highest {max(values):,.1f}"
    return Markup(
        '<svg class="chart" viewBox="0 0 {w} {h}" width="100%" height="{h}" role="img"'
        ' aria-label="{s}" preserveAspectRatio="none">{bars}'
        '<text x="4" y="12" class="chart-top">{top}</text></svg>'
    ).format(w=width, h=height, s=summary, bars=Markup("").join(bars), top=f"{top:,.1f}")


def sparkline(values: Sequence[float], label: str, width: int = 120, height: int = 24) -> Markup:
    """A small SVG line of recent values (throughput), described for screen readers."""
    if len(values) < 2:
        return Markup('<span class="muted">\u2013</span>')
    top = max(values) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(values)
    )
    summary = f"{label}: now {values[-1]:,.1f}/s, highest {max(values):,.1f}/s"
    return Markup(
        '<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img"'
        ' aria-label="{s}"><polyline points="{p}" /></svg>'
    ).format(w=width, h=height, s=summary, p=points)
