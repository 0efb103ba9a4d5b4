"""Connectors: the code that talks to sources, channels and fulfillment services."""
