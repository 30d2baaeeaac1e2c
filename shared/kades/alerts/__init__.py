"""Alert fan-out: the Redis stream every api replica reads (WebSocket clients, replay) and
signed webhooks with retries and dead letters (the alert-dispatch function)."""
