"""oscar-api classes this store replaces, found by oscar-api's `get_api_class` through
settings.OSCARAPI_OVERRIDE_MODULES (a package of its own, so that oscar-api's look-ups
of other modules, e.g. `views.root`, never import this app's views)."""
