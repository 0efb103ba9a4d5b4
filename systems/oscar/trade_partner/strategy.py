"""Which stock record and which price a shopper gets: price lists as partners.

A partner whose code is the name of a Django auth group is a *price list* (the seed makes
group and partner `trade`); every other partner is a warehouse. A signed-in user in such a
group pays that partner's price for a product when it has one; everyone else (and a product
without a price on the user's list) pays the warehouse's price. Stock is always taken from
a warehouse record, never from a price list's, so quantities live in one place only and
Oscar allocates an order's stock on the warehouse the line names (its partner SKU). A user
in several price-list groups gets the first by name. No tax (Oscar's default).
"""

from decimal import Decimal

from django.contrib.auth.models import Group
from oscar.apps.partner import strategy
from oscar.core.loading import get_model

Partner = get_model("partner", "Partner")


class Selector:
    def strategy(self, request=None, user=None, **kwargs):
        return PriceListStrategy(request, user)


class PriceListStrategy(strategy.StockRequired, strategy.NoTax, strategy.Structured):
    """Who the user is is read when a price is asked for, not when the strategy is made:
    Oscar's BasketMiddleware makes the request's strategy before DRF has read the API
    token (it passes the anonymous user then); DRF sets `request.user` once it has."""

    def __init__(self, request=None, user=None):
        super().__init__(request)
        self._user = user
        self._known = None  # (user id, the user's price list partner id, price list ids)

    def _lists(self):
        user = self._user
        if user is None or not user.is_authenticated:
            user = getattr(self.request, "user", None)
        who = user.pk if user is not None and user.is_authenticated else None
        if self._known is None or self._known[0] != who:
            groups = Group.objects.values_list("name", flat=True)
            lists = dict(Partner.objects.filter(code__in=groups).values_list("code", "id"))
            mine = sorted(g.name for g in user.groups.all() if g.name in lists) if who else []
            self._known = (who, lists[mine[0]] if mine else None, frozenset(lists.values()))
        return self._known[1], self._known[2]

    def select_stockrecord(self, product):
        """The warehouse record with the most stock left (the first when none has any)."""
        _, price_lists = self._lists()
        records = [r for r in product.stockrecords.all() if r.partner_id not in price_lists]
        if not records:
            return None
        return max(records, key=lambda r: (r.net_stock_level, -records.index(r)))

    def pricing_policy(self, product, stockrecord):
        tier, _ = self._lists()
        if stockrecord is not None and tier is not None:
            listed = next(
                (
                    r
                    for r in product.stockrecords.all()
                    if r.partner_id == tier and r.price is not None
                ),
                None,
            )
            if listed is not None:
                return strategy.FixedPrice(
                    currency=listed.price_currency, excl_tax=listed.price, tax=Decimal("0.00")
                )
        return super().pricing_policy(product, stockrecord)
