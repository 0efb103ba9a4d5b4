"""The server's garbage collector is set up once it starts serving (stockyard.web.app):
startup objects frozen, young collections rarer. Speed lives in bench/api.py; this checks
only that serving applies the policy, and applies it once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from stockyard.application import Application
from stockyard.web.app import YOUNG_OBJECTS, create_app
from stockyard.web.settings import ApiSettings


@pytest.fixture
def collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_serving_freezes_startup_objects_and_spaces_young_collections(
    tmp_path: Path, collector: None
) -> None:
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    service = Application.init(f"sqlite:///{tmp_path}/gc.db").service
    app = create_app(service, ApiSettings(rate_per_second=0))
    assert gc.get_freeze_count() == 0  # building the application changes nothing
    with TestClient(app) as http:
        assert http.get("/healthz").status_code == 200
        assert gc.get_threshold() == (YOUNG_OBJECTS, 10, 10)
        frozen = gc.get_freeze_count()
        assert frozen > 0
    with TestClient(create_app(service, ApiSettings(rate_per_second=0))):
        assert gc.get_freeze_count() <= frozen  # once per process: nothing more frozen
