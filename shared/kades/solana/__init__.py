"""Solana: RPC client, transaction normaliser and the `kades solana-source` command."""
