"""The demo application after its line_shares bug is fixed: what `dlq retry --app` runs
once the fix is deployed (tests/cli/test_operate.py)."""

from __future__ import annotations

from decimal import Decimal

from eventledger import Application
from eventledger.examples.orders import demo
from eventledger.examples.orders.domain import OrderCreated
from eventledger.projections import Context, on


class FixedLineShares(demo.LineShares):
    """line_shares that knows an order can be free."""

    name = "line_shares"

    @on
    async def created(self, event: OrderCreated, context: Context) -> None:
        assert context.docs is not None
        total = sum((line.total for line in event.lines), Decimal(0))
        shares = {
            line.sku: str(round(line.total / total, 4) if total else Decimal(0))
            for line in event.lines
        }
        await context.docs.put(context.aggregate_id, {"shares": shares})


application = Application(
    "orders-demo",
    commands=demo.application.handlers,
    aggregates=list(demo.application.aggregates.values()),
    projections=[
        *(p for p in demo.application.projection_sources if p is not demo.LineShares),
        FixedLineShares,
    ],
)
