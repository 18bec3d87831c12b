"""Demos that ship trained (filled in below)."""
