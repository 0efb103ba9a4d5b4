"""The trade store of Stockyard's tests: django-oscar with django-oscar-api's admin API and
one small app of our own (stockyard_trade). Not a production configuration.

Everything that varies per run comes from the environment, set by systems/oscar.py:
STOCKYARD_OSCAR_DB (the SQLite file), STOCKYARD_OSCAR_SECRET (Django's secret key, new for
every process) and STOCKYARD_OSCAR_MEDIA (uploaded product images).
"""

import os
from pathlib import Path

from oscar import INSTALLED_APPS as OSCAR_APPS
from oscar.defaults import *  # noqa: F403  (Oscar's settings, overridden below)

SECRET_KEY = os.environ["STOCKYARD_OSCAR_SECRET"]
DATABASE_FILE = Path(os.environ["STOCKYARD_OSCAR_DB"])
MEDIA_ROOT = os.environ.get("STOCKYARD_OSCAR_MEDIA", str(DATABASE_FILE.parent))

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "trade_site.urls"
SITE_ID = 1
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATABASE_FILE),
        # IMMEDIATE: each request's transaction takes the write lock when it starts and
        # waits for it (up to `timeout`); a deferred one that reads first and then writes
        # fails at once with "database is locked" when another request writes meanwhile
        # (seen when a worker's product update met a shopper's basket).
        "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        "ATOMIC_REQUESTS": True,
    }
}

# Oscar's partner app is forked (trade_partner/apps.py) for its pricing strategy only: its
# models and migrations stay Oscar's.
INSTALLED_APPS = [
    *(
        "trade_partner.apps.PartnerConfig" if app.startswith("oscar.apps.partner.") else app
        for app in OSCAR_APPS
    ),
    "rest_framework",
    "rest_framework.authtoken",
    "oscarapi",
    "stockyard_trade",
]

MIGRATION_MODULES = {"partner": "oscar.apps.partner.migrations"}

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "oscar.apps.basket.middleware.BasketMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "oscar.apps.search.context_processors.search_form",
                "oscar.apps.checkout.context_processors.checkout",
                "oscar.core.context_processors.metadata",
            ]
        },
    }
]

AUTHENTICATION_BACKENDS = [
    "oscar.apps.customer.auth_backends.EmailBackend",
    "django.contrib.auth.backends.ModelBackend",
]

HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}

# The API's callers prove who they are with a DRF token (systems/oscar.py issues one per run
# for the admin user, and one per customer a test signs in as); no password exists.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
    ],
}

OSCAR_DEFAULT_CURRENCY = "USD"
# No thumbnail library is installed: deleting product images needs a thumbnailer that does
# not need one (trade_site/thumbnails.py).
OSCAR_THUMBNAILER = "trade_site.thumbnails.NoThumbnails"
OSCARAPI_BLOCK_ADMIN_API_ACCESS = False
OSCARAPI_INITIAL_ORDER_STATUS = "new"
# The admin users API as oscar-api ships it shows username, email and date_joined only; a
# trade account also needs its name, whether it may sign in, and its customer group (Django's
# auth groups: Oscar has no customer group of its own). Every field listed here is WRITABLE
# through the API (oscar-api's serializer is a ModelSerializer): never list is_staff,
# is_superuser, password or user_permissions, or the admin token could make a superuser.
OSCARAPI_ADMIN_USER_FIELDS = (
    "url",
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "groups",
    "date_joined",
)
# Our app's api/serializers/admin/user.py replaces oscar-api's admin user serializer: it adds
# is_staff, is_superuser and has_password READ-ONLY, which the connector reads to refuse
# taking over a user it could not have made when it links an existing username.
OSCARAPI_OVERRIDE_MODULES = ["stockyard_trade.api"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
