"""Whale detection: large moves, accumulation, distribution and wallet splitting per token."""
