"""The `api` function: REST API, WebSocket alerts and the live dashboard (see app.py)."""
