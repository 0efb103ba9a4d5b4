"""The real django-oscar trade store for the tests (systems/oscar.py): one per session, from
the seeded template, stopped at the end. tests/conftest.py registers the fixture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from systems.net import free_port

if TYPE_CHECKING:
    from systems.oscar import OscarStore


@pytest.fixture(scope="session")
def oscar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OscarStore]:
    """Oscar with django-oscar-api on 127.0.0.1; `.admin()` calls it as the staff user."""
    from systems.oscar import start_oscar

    store = start_oscar(free_port(), tmp_path_factory.mktemp("oscar"))
    yield store
    store.stop()
