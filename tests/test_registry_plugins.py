"""A connector package that cannot be loaded is left out, not fatal: the others still work
and its connections fail naming it as not installed."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from stockyard.connectors.registry import ConnectorRegistry
from stockyard.errors import PermanentError
from stockyard.tenancy import Connection


def _plugin(site: Path, name: str, target: str) -> None:
    info = site / f"stockyard_plugin_{name}-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: stockyard-plugin-{name}\n")
    (info / "entry_points.txt").write_text(f"[stockyard.connectors]\n{name} = {target}\n")


def test_a_broken_or_wrong_plugin_is_left_out_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _plugin(tmp_path, "gone", "stockyard_no_such_module:Nothing")
    (tmp_path / "stockyard_not_a_connector.py").write_text("class Thing:\n    pass\n")
    _plugin(tmp_path, "thing", "stockyard_not_a_connector:Thing")
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="stockyard.connectors.registry"):
        registry = ConnectorRegistry.installed()
    assert "gone" not in registry.names() and "thing" not in registry.names()
    assert "http" in registry.names()  # the others load as before
    logged = caplog.text
    assert "'gone'" in logged and "cannot be loaded" in logged
    assert "'thing'" in logged and "not a Connector class" in logged
    connection = Connection(1, 1, "channel", "gone", "Broken shop", {}, "active")
    with pytest.raises(PermanentError, match="'gone', which is not installed"):
        registry.for_connection(connection, "channel")
    sys.modules.pop("stockyard_not_a_connector", None)
