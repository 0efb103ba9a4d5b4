"""The HTTP application: the API under /v1 and the console under /console, side by side."""
