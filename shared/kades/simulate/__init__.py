"""Seeded, labelled simulators: the demo's and the tests' data, not part of any function.

- `market`: token ticks (random walks) with injected spikes and crashes;
- `chain`: chain-block events playing labelled manipulation scenarios;
- `social`: posts about tokens with labelled hype, shill and FUD campaigns;
- `series`: univariate series of many kinds with labelled anomalies, for judging detectors;
- `story`: market, social and chain together over the same minutes (the demo);
- `cli`: `kades simulate`.

Each module imports only those above it in this list, never the package: no module here
imports another through a cycle.
"""
