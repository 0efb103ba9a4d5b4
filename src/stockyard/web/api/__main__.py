"""`python -m stockyard.web.api`: print the OpenAPI document (kept as docs/openapi.json)."""

import sys
import tempfile

from stockyard.web.api.app import create_app, openapi_document

from stockyard import app as wiring

with tempfile.TemporaryDirectory() as tmp:
    queue = wiring.init_queue(f"sqlite:///{tmp}/openapi.db")
    sys.stdout.write(openapi_document(create_app(wiring.build_service(queue))))
    queue.db.close()
