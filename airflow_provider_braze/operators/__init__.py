"""Braze operators."""
