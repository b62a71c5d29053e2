import json
from decimal import Decimal

from django.db.models import F
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from .models import LedgerEntry, Order, Stock


@require_POST
def create_order(request):
    """Three writes; IdempotencyKeyMiddleware runs them once per key."""
    data = json.loads(request.body)
    sku, quantity = data["sku"], data["quantity"]
    order = Order.objects.create(sku=sku, quantity=quantity)
    Stock.objects.filter(sku=sku).update(available=F("available") - quantity)
    LedgerEntry.objects.create(order=order, amount=quantity * Decimal("9.90"))
    return JsonResponse({"order_id": order.id, "sku": sku, "quantity": quantity}, status=201)
