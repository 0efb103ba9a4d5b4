"""Stockyard: a durable integration queue for commerce."""

__version__ = "0.1.0"
