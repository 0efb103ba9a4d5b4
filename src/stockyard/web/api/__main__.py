"""`python -m stockyard.web.api`: print the OpenAPI document (kept as docs/openapi.json)."""

import sys
import tempfile

from stockyard.application import Application
from stockyard.web.api import openapi_document
from stockyard.web.app import create_app

with tempfile.TemporaryDirectory() as tmp:
    application = Application.init(f"sqlite:///{tmp}/openapi.db")
    sys.stdout.write(openapi_document(create_app(application.service, metrics=application.metrics)))
    application.close()
