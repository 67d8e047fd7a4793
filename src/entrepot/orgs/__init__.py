"""Organisations: who owns datasets and applications."""
