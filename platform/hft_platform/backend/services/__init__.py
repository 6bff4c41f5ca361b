"""Business operations of the backend, free of HTTP: keyword-only functions and small clients.

They raise :mod:`.errors` types; the routes translate those into status codes.
"""
