"""The web console: server-rendered pages (Jinja2) made live with htmx, served by
`stockyard serve` under /console. A thin shell over the service layer, like the API and
the CLI; docs/console.md says why it is built this way."""

from stockyard.console.routes import router

__all__ = ["router"]
