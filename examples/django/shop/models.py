from django.db import models


class Order(models.Model):
    sku = models.IntegerField()
    quantity = models.IntegerField()

    class Meta:
        db_table = "orders"


class Stock(models.Model):
    sku = models.IntegerField(primary_key=True)
    available = models.IntegerField()

    class Meta:
        db_table = "stock"


class LedgerEntry(models.Model):
    order = models.ForeignKey(Order, on_delete=models.PROTECT)
    amount = models.DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        db_table = "ledger"
