"""The Orders service: what ``eventledger serve examples.orders.app:application`` runs."""

from __future__ import annotations

from eventledger import Application
from examples.orders.commands import handlers
from examples.orders.domain import Order
from examples.orders.fulfilment import OrderFulfilment
from examples.orders.read_models import CustomerOrders, DailySales, OrderList
from examples.orders.stock import StockItem

application = Application(
    "orders",
    commands=handlers,
    aggregates=[Order, StockItem],
    projections=[OrderList, CustomerOrders, DailySales, OrderFulfilment],
    snapshot_every={StockItem: 100},
)
