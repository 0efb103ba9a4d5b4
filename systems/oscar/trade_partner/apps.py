"""Oscar's `partner` app, forked the way Oscar's docs say (same label, our module), for one
reason: Oscar loads `partner.strategy.Selector` from the installed `partner` app, so this
fork's strategy.py decides which price a signed-in trade customer sees. Models and
migrations stay Oscar's own (models.py re-exports them; settings.MIGRATION_MODULES points
the label at Oscar's migrations), so the database is exactly Oscar's."""

from oscar.apps.partner import apps


class PartnerConfig(apps.PartnerConfig):
    name = "trade_partner"
