"""Entrepot: an open data platform on PostgreSQL."""

__version__ = "0.1.0"
