"""Numbered SQL migrations for the SQLite store (NNNN_name.sql, applied in order)."""
