"""The admin users API's serializer, found by oscar-api's `get_api_class` through
settings.OSCARAPI_OVERRIDE_MODULES in place of its own.

oscar-api's serializer is a ModelSerializer of the fields in OSCARAPI_ADMIN_USER_FIELDS,
each writable when the model's is. The connector must see whether a user is staff or a
superuser (it never links such a user to an account), but listing those fields there
would let the admin token Stockyard holds make any user a superuser. Here they are shown
read-only, with `has_password`: whether the user has a password that can sign in. Django
counts the empty password the API leaves on the users it creates as "usable"
(`has_usable_password()` is only false for the `!` mark), so that method cannot tell an
account Stockyard made from a shopper's own."""

from typing import Any

from oscarapi import settings
from oscarapi.serializers.admin.user import AdminUserSerializer as OscarAdminUserSerializer
from rest_framework import serializers

READ_ONLY = ("is_staff", "is_superuser", "has_password")


class AdminUserSerializer(OscarAdminUserSerializer):
    # Declared, not listed in read_only_fields: a declared field is read-only whatever
    # the settings list, so no OSCARAPI_ADMIN_USER_FIELDS value can make them writable.
    is_staff = serializers.BooleanField(read_only=True)
    is_superuser = serializers.BooleanField(read_only=True)
    has_password = serializers.SerializerMethodField()

    class Meta(OscarAdminUserSerializer.Meta):
        fields = (*(f for f in settings.ADMIN_USER_FIELDS if f not in READ_ONLY), *READ_ONLY)

    def get_has_password(self, user: Any) -> bool:
        return bool(user.password) and user.has_usable_password()
