"""The real django-oscar trade store for the tests (systems/oscar.py): one per session, from
the seeded template, stopped at the end; and one of its own for a test that must not meet
what other tests left in the store (about a second: a copy of the template).
tests/conftest.py registers the fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
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


@pytest.fixture
def own_oscar(tmp_path: Path) -> Iterator[OscarStore]:
    """An Oscar of this test's own: an end-to-end run takes every product its ERP holds,
    and another test's product under the same UPC in the session's store (a standalone
    MUG where this ERP has a parent MUG) would be refused and stop the channel's lane."""
    from systems.oscar import start_oscar

    store = start_oscar(free_port(), tmp_path / "oscar")
    yield store
    store.stop()
