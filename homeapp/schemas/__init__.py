"""Marshmallow schemas, one module per feature, one schema per incoming payload."""
