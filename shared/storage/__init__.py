"""Connections to PostgreSQL and Redis, the Lua script loader, and migrations."""
