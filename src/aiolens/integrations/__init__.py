"""Thin adapters to web frameworks: :mod:`aiolens.integrations.starlette` (and FastAPI)."""
