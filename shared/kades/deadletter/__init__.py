"""Dead letters: what the Broker gave up on, kept in one Redis stream (`kades.keys.DLQ`).

- `store`: the stream's entries, listing and replay to the broker ingress;
- `function`: the `dead-letter` function, the Broker's deadLetterSink (it ships as an image);
- `cli`: `kades dlq list` and `kades dlq replay`.

Two writers share the stream: the dead-letter function and the development broker, which
parks an event there when its sink cannot take it. Nothing here imports the development
broker (`kades.broker`, tooling Knative replaces on a cluster): tests/test_layout.py.
"""
