"""Braze hooks."""
