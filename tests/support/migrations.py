"""Running the migrations up to one revision, as an upgrade test needs (stockyard.db runs
them up to head)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

import stockyard.migrations
from stockyard.db import connect


def migrate_to(url: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(stockyard.migrations.__file__).parent))
    engine = create_engine(connect(url).sqlalchemy_url())
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()
