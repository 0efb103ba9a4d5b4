"""The Magento double's tier prices (issue 19): `POST /V1/products/tier-prices` (add or
update), `POST /V1/products/tier-prices-information` and `POST /V1/products/tier-prices-delete`,
as Magento's TierPriceStorage and TierPriceValidator do them (facts, docs/magento-notes.md
"Images and tier prices"):

- each price is checked on its own and a bad one comes back in the answer's list of
  failures (`message` with `%name` placeholders, `parameters` in their order), the others
  saved: an unknown SKU, a negative price, a price type other than fixed/discount, a
  quantity <= 0, a website other than 0 while prices are global (`price_scope_website`),
  an unknown customer group (matched without case; "ALL GROUPS" is every group), two
  prices of one group and quantity where one is for all websites and the other not;
- an update matches an existing price by SKU, group, quantity and website;
- information about an unknown SKU is 404;
- a delete removes the price of that SKU, group and quantity whose value is the one given
  (Magento matches the value, not the website).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
ROW = "Row ID: SKU = %SKU, Website ID: %websiteId, Customer Group: %customerGroup, Quantity: %qty."
ALL_GROUPS = "all groups"


@dataclass
class TiersMixin:
    tier_prices: list[Obj] = field(default_factory=list)
    customer_groups: list[str] = field(
        default_factory=lambda: ["NOT LOGGED IN", "General", "Wholesale", "Retailer"]
    )
    websites: set[int] = field(default_factory=lambda: {0, 1})
    price_scope_website: bool = False  # Magento's default price scope is global

    products: dict[str, Obj] = field(default_factory=dict)  # MagentoDouble's own

    def _tiers_execute(self, method: str, template: str, body: Any) -> tuple[int, Any] | None:
        match (method, template):
            case ("POST", "/V1/products/tier-prices"):
                return 200, self._update_tiers(body["prices"])
            case ("POST", "/V1/products/tier-prices-information"):
                missing = [s for s in body["skus"] if s not in self.products]
                if missing:
                    return 404, {
                        "message": "Requested products don't exist: %sku",
                        "parameters": {"sku": ", ".join(missing)},
                    }
                return 200, [dict(t) for t in self.tier_prices if t["sku"] in body["skus"]]
            case ("POST", "/V1/products/tier-prices-delete"):
                return 200, self._delete_tiers(body["prices"])
        return None

    def _group(self, given: str) -> str | None:
        if given.lower() == ALL_GROUPS:
            return "ALL GROUPS"
        return next((g for g in self.customer_groups if g.lower() == given.lower()), None)

    def _tier_failure(self, p: Obj, existing: list[Obj]) -> Obj | None:
        row = [p["sku"], str(p["website_id"]), p["customer_group"], str(p["quantity"])]

        def failure(text: str, *first: str) -> Obj:
            return {"message": f"{text} {ROW}", "parameters": [*first, *row]}

        if p["sku"] not in self.products:
            return failure("Invalid attribute SKU = %SKU.")
        if p["price"] < 0 or (p["price_type"] == "discount" and p["price"] > 100):
            return failure("Invalid attribute Price = %price.", str(p["price"]))
        if p["price_type"] not in ("fixed", "discount"):
            return failure("Invalid attribute Price Type = %priceType.", p["price_type"])
        if p["quantity"] <= 0:
            return failure("Invalid attribute Quantity = %qty.")
        if p["website_id"] not in self.websites or (
            not self.price_scope_website and p["website_id"] != 0
        ):
            return failure("Invalid attribute Website ID = %websiteId.")
        group = self._group(p["customer_group"])
        if group is None:
            return failure("No such entity with Customer Group = %customerGroup.")
        for other in existing:
            if (
                other["sku"] == p["sku"]
                and other["customer_group"].lower() == group.lower()
                and other["quantity"] == p["quantity"]
                and 0 in (other["website_id"], p["website_id"])
                and other["website_id"] != p["website_id"]
            ):
                return failure(
                    "We found a duplicate website, tier price, customer group and quantity:"
                    " Customer Group = %customerGroup, Website ID = %websiteId,"
                    " Quantity = %qty."
                )
        return None

    def _update_tiers(self, prices: list[Obj]) -> list[Obj]:
        failures = []
        for p in prices:
            others = [*self.tier_prices, *(q for q in prices if q is not p)]
            failure = self._tier_failure(p, others)
            if failure is not None:
                failures.append(failure)
                continue
            saved = dict(p) | {"customer_group": self._group(p["customer_group"])}
            same = next((t for t in self.tier_prices if _same_row(t, saved)), None)
            if same is None:
                self.tier_prices.append(saved)
            else:
                same["price"], same["price_type"] = saved["price"], saved["price_type"]
        return failures

    def _delete_tiers(self, prices: list[Obj]) -> list[Obj]:
        failures = []
        for p in prices:
            failure = self._tier_failure(p, [])
            if failure is not None:
                failures.append(failure)
                continue
            self.tier_prices = [
                t
                for t in self.tier_prices
                if not (
                    t["sku"] == p["sku"]
                    and t["customer_group"].lower() == p["customer_group"].lower()
                    and t["quantity"] == p["quantity"]
                    and t["price"] != 0
                    and t["price"] == p["price"]
                )
            ]
        return failures


def _same_row(a: Obj, b: Obj) -> bool:
    return bool(
        a["sku"] == b["sku"]
        and a["customer_group"].lower() == b["customer_group"].lower()
        and a["quantity"] == b["quantity"]
        and a["website_id"] == b["website_id"]
    )
