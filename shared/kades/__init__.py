"""KADES — the Kinetic Anomaly Detection Engine: the code every function shares."""
__version__ = "0.1.0"
