"""Shared test helpers that are not fixtures: conftest.py files hold the fixtures and import
what they need from here, and so do test modules (never from a conftest or another test)."""
