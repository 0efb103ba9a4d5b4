"""The template database's data, after `migrate` (run by systems/oscar.py with Oscar's own
Python, in this folder): the staff user the API is called as (no password: the launcher
gives it a fresh token per run), a warehouse (partner), a product class whose products
vary by size, the customer group "trade" and two shipping countries (Oscar ships none;
its own loader needs pycountry), and the price list `trade` for that group.
"""

import django

django.setup()

from django.contrib.auth.models import Group, User  # noqa: E402
from oscar.core.loading import get_model  # noqa: E402

Country = get_model("address", "Country")
Partner = get_model("partner", "Partner")
ProductClass = get_model("catalogue", "ProductClass")
ProductAttribute = get_model("catalogue", "ProductAttribute")

admin = User(username="stockyard-admin", email="stockyard@example.com")
admin.is_staff = admin.is_superuser = True
admin.set_unusable_password()
admin.save()
Partner.objects.create(name="Main warehouse", code="main")
# A price list, not a warehouse: its code names the customer group whose members pay its
# prices (trade_partner/strategy.py).
Partner.objects.create(name="Trade prices", code="trade")
apparel = ProductClass.objects.create(
    name="Apparel", slug="apparel", requires_shipping=True, track_stock=True
)
ProductAttribute.objects.create(product_class=apparel, name="Size", code="size", type="text")
Group.objects.create(name="trade")
for a2, a3, numeric, name in (
    ("US", "USA", "840", "United States"),
    ("DE", "DEU", "276", "Germany"),
):
    Country.objects.create(
        iso_3166_1_a2=a2,
        iso_3166_1_a3=a3,
        iso_3166_1_numeric=numeric,
        name=name,
        printable_name=name,
        is_shipping_country=True,
    )
