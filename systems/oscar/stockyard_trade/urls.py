from django.urls import path

from stockyard_trade import views

urlpatterns = [
    path("orders/", views.OrdersSince.as_view(), name="stockyard-orders"),
    path(
        "orders/<str:number>/shipping-events/",
        views.ShippingEvents.as_view(),
        name="stockyard-shipping-events",
    ),
]
