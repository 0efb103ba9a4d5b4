"""Oscar's shop, oscar-api under /api/ (its admin API under /api/admin/) and Stockyard's
small app under /stockyard/."""

from django.apps import apps
from django.urls import include, path

urlpatterns = [
    path("api/", include("oscarapi.urls")),
    path("stockyard/", include("stockyard_trade.urls")),
    path("", include(apps.get_app_config("oscar").urls[0])),
]
