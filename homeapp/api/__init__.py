"""The backend API: a trusted backend performs client events over HTTP (docs/backend-api.md)."""
