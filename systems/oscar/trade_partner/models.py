# Oscar's partner models, unchanged: the fork only replaces the strategy (apps.py says why).
from oscar.apps.partner.models import *  # noqa: F403
