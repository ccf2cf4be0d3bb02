"""The Orders service: what `eventledger serve eventledger.examples.orders.app:application` runs."""

from __future__ import annotations

from eventledger import Application
from eventledger.examples.orders.commands import handlers
from eventledger.examples.orders.domain import Order
from eventledger.examples.orders.fulfilment import OrderFulfilment
from eventledger.examples.orders.read_models import (
    CustomerOrders,
    DailySales,
    OrderList,
)
from eventledger.examples.orders.stock import StockItem

application = Application(
    "orders",
    commands=handlers,
    aggregates=[Order, StockItem],
    projections=[OrderList, CustomerOrders, DailySales, OrderFulfilment],
    snapshot_every={StockItem: 100},
)
