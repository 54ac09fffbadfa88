"""`lakesql serve`: a Postgres wire-protocol server over a warehouse (see docs/server.md)."""

from lakesql.server.server import Server, is_loopback, serve

__all__ = ["Server", "is_loopback", "serve"]
