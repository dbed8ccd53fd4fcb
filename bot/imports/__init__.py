"""Imports of files an admin uploads (the org CSV)."""
