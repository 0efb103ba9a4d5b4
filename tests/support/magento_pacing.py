"""How long the Magento bulk tests let a call wait for the double's bulks (one place for
the three test files that drive `magento.bulk`)."""

from __future__ import annotations

import pytest

from stockyard.connectors.magento import bulk


def brief(max_wait: float) -> bulk.Pacing:
    """Polls at once and gives up after `max_wait`: for a consumer down on purpose."""
    return bulk.Pacing(first_poll=0.001, max_interval=0.01, max_wait=max_wait)


# A call with nothing stuck ends as soon as its bulks are done; this only bounds how long a
# loaded machine may take (0.2-0.3 s made calls that must finish fail under load).
PATIENT = brief(30)


@pytest.fixture(autouse=True)
def patient_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "DEFAULT_PACING", PATIENT)
