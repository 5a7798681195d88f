"""Braze sensors."""
