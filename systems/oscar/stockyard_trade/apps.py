from django.apps import AppConfig


class StockyardTradeConfig(AppConfig):
    name = "stockyard_trade"
    verbose_name = "Stockyard trade store additions"
    default_auto_field = "django.db.models.AutoField"
