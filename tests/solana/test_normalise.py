"""The normaliser on every real mainnet transaction in ../shared/data/solana/rpc (exact amounts).

Expected values were read off each transaction's pre/post token balances and token
instructions (a wrapped-SOL account opened and closed within the transaction has no balance:
what it paid is read from its Transfer instructions), and, for pump.fun, checked against the
bonding curve's lamport change, which equals the event's SOL amount.
"""
from __future__ import annotations

import copy

import pytest
import recorded
import shared_material

from kades.solana.normalise import normalise_transaction

DATA = shared_material.DATA / "solana/rpc"
pytestmark = shared_material.needs(DATA)

KEEP = {"transfers": ("mint", "source", "destination", "amount", "native"),
        "swaps": ("trader", "pool", "side", "base_mint", "base_amount", "quote_amount",
                  "mint_in", "amount_in", "mint_out", "amount_out"),
        "liquidity": ("pool", "action", "provider", "base_mint", "base_delta", "quote_delta",
                      "base_reserve_after", "quote_reserve_after", "lp_amount"),
        "pool_states": ("pool", "base_reserve", "quote_reserve", "virtual"),
        "launches": ("kind", "mint", "creator", "mint_authority", "freeze_authority")}

EXPECTED = {
    "coinpusher_28FDVn-raydium-cp-initialize.json": {
        "transfers": [  # the pool creation fee, paid from a wrapped-SOL account closed in the transaction
            {"mint": "So11111111111111111111111111111111111111112", "source": "De1Rgnd2nR2bZmvxj9gKfXJhhHDZVuTB3FKNSCwbdUrj", "destination": "GThUX1Atko4tqhN2NaiTazWSeFWMuiUvfFnyJyUghFMJ", "amount": 150000000, "native": False},
        ],
        "liquidity": [
            {"pool": "AQGPHsNFfvwNULydEKQtEnwMAJJH1AGgHC2oHUHuFKhe", "action": "create", "provider": "De1Rgnd2nR2bZmvxj9gKfXJhhHDZVuTB3FKNSCwbdUrj", "base_mint": "DeXRw2jRpVWEhXnM4BG9fjDkFxc7eQ17TPQWezegG9CS", "base_delta": 21000000000000000, "quote_delta": 20000000000, "base_reserve_after": 21000000000000000, "quote_reserve_after": 20000000000, "lp_amount": 20493901531819},
        ],
        "pool_states": [
            {"pool": "AQGPHsNFfvwNULydEKQtEnwMAJJH1AGgHC2oHUHuFKhe", "base_reserve": 21000000000000000, "quote_reserve": 20000000000, "virtual": False},
        ],
    },
    "coinpusher_2ex9my-raydium-cp-initialize.json": {
        "transfers": [
            {"mint": "97pcbfUzgSXH427N7iPxjgi18FXu7JEUSZgGvjJBxZFm", "source": "7Sdz216qWXbQeAzG5PFPgp7TYkaLjYenGaT2K6oKH9UC", "destination": "B4YdAjeejQGYRV5n3ppJ81QmHnpig4Ly3FHCP1syLBBS", "amount": 3709848810536, "native": False},
            {"mint": "So11111111111111111111111111111111111111112", "source": "7Sdz216qWXbQeAzG5PFPgp7TYkaLjYenGaT2K6oKH9UC", "destination": "GThUX1Atko4tqhN2NaiTazWSeFWMuiUvfFnyJyUghFMJ", "amount": 150000000, "native": False},
            {"mint": "So11111111111111111111111111111111111111112", "source": "7Sdz216qWXbQeAzG5PFPgp7TYkaLjYenGaT2K6oKH9UC", "destination": "B4YdAjeejQGYRV5n3ppJ81QmHnpig4Ly3FHCP1syLBBS", "amount": 12500000, "native": False},
        ],
        "liquidity": [
            {"pool": "aiNLkBXJdiK9zPqZowZMSo65JaTnBSyPmoETi86f9Uj", "action": "create", "provider": "7Sdz216qWXbQeAzG5PFPgp7TYkaLjYenGaT2K6oKH9UC", "base_mint": "97pcbfUzgSXH427N7iPxjgi18FXu7JEUSZgGvjJBxZFm", "base_delta": 254320389082119, "quote_delta": 85690954696, "base_reserve_after": 254320389082119, "quote_reserve_after": 85690954696, "lp_amount": None},
        ],
        "pool_states": [
            {"pool": "aiNLkBXJdiK9zPqZowZMSo65JaTnBSyPmoETi86f9Uj", "base_reserve": 254320389082119, "quote_reserve": 85690954696, "virtual": False},
        ],
    },
    "coinpusher_3YWUfe-raydium-cp-deposit.json": {
        "liquidity": [
            {"pool": "DFoKMBcNrvCCzf1VqE6stjXUdSZP65x2utjPqrkWEjPw", "action": "add", "provider": "B9aPdBMCSnnKa4E95PJqHG7UN9KqefGj6qf7SjF2R6kY", "base_mint": "BgCeigJo2iY3dJhqS2z9w4pjjufFd4F9oKS3FrkMbmbJ", "base_delta": 22307899997944, "quote_delta": 199000000, "base_reserve_after": 29011479997332, "quote_reserve_after": 258800000, "lp_amount": 66627862783},
        ],
        "pool_states": [
            {"pool": "DFoKMBcNrvCCzf1VqE6stjXUdSZP65x2utjPqrkWEjPw", "base_reserve": 29011479997332, "quote_reserve": 258800000, "virtual": False},
        ],
    },
    "coinpusher_3iySYF-raydium-v4-initialize.json": {
        "transfers": [  # the pool creation fee (a wrapped-SOL account closed in the transaction), a SOL transfer
            {"mint": "So11111111111111111111111111111111111111112", "source": "5PXxuZkvftsg5CAGjv5LL5tEtvBRskdx1AAjxw8hK2Qx", "destination": "GThUX1Atko4tqhN2NaiTazWSeFWMuiUvfFnyJyUghFMJ", "amount": 400000000, "native": False},
            {"mint": "So11111111111111111111111111111111111111112", "source": "5PXxuZkvftsg5CAGjv5LL5tEtvBRskdx1AAjxw8hK2Qx", "destination": "3AVi9Tg9Uo68tJfuvoKvqKNWKkC5wPdSSdeBnizKZ6jT", "amount": 5000000, "native": True},
        ],
        "liquidity": [
            {"pool": "HESQgfGdHxv8vHdJTdhKHFk5MAheXKavdDwz5PXEXPXa", "action": "create", "provider": "5PXxuZkvftsg5CAGjv5LL5tEtvBRskdx1AAjxw8hK2Qx", "base_mint": "9WJXYDyMPrrzKHkjqtm6WefritTxkw36kjgzC42JukpW", "base_delta": 206900000000000, "quote_delta": 79005359154, "base_reserve_after": 206900000000000, "quote_reserve_after": 79005359154, "lp_amount": 4042044497524},
        ],
        "pool_states": [
            {"pool": "HESQgfGdHxv8vHdJTdhKHFk5MAheXKavdDwz5PXEXPXa", "base_reserve": 206900000000000, "quote_reserve": 79005359154, "virtual": False},
        ],
    },
    "coinpusher_5FpTSt-raydium-v4-remove-liquidity.json": {
        "liquidity": [
            {"pool": "5Ef8pmqAhi2L9DyvdoD2bJZBtZC9iFrnfC32g3cA9zFN", "action": "remove", "provider": "ChTuHvnbHq8vC9skb8VUDkrg4REdiSd8DDLhcbUjc4FU", "base_mint": "9tqTsXasbivHeMAQY9njRqRFTsz51yzKvqHtrs2ZYgVe", "base_delta": -677727783814635188, "quote_delta": -4431661203, "base_reserve_after": 67307993247687, "quote_reserve_after": 440127, "lp_amount": 54771255750516},
        ],
        "pool_states": [
            {"pool": "5Ef8pmqAhi2L9DyvdoD2bJZBtZC9iFrnfC32g3cA9zFN", "base_reserve": 67307993247687, "quote_reserve": 440127, "virtual": False},
        ],
    },
    "coinpusher_5Jiq8i-raydium-v4-add-liquidity.json": {
        "liquidity": [
            {"pool": "2Rcx3UBaDbNHVFnVBFx4AG7cxHksBanKpBASEhS6SF5F", "action": "add", "provider": "5uF18cremoqNHpgHDUF9cMGJaSmfaaR6UE7dVEW4D5A3", "base_mint": "fCkfAdhfrsevH9fKjS7rjB7t3GZtzHSi37yFZofsCNC", "base_delta": 2818202141226163, "quote_delta": 2879474530, "base_reserve_after": 59973249528569946, "quote_reserve_after": 61277167443, "lp_amount": 2605734184614},
        ],
        "pool_states": [
            {"pool": "2Rcx3UBaDbNHVFnVBFx4AG7cxHksBanKpBASEhS6SF5F", "base_reserve": 59973249528569946, "quote_reserve": 61277167443, "virtual": False},
        ],
    },
    "coinpusher_5LcDnN-raydium-v4-swap-17-acc.json": {
        "swaps": [
            {"trader": "FhXQupaa2hV6QerwikzKXFArzbkf5rB5QvjPq4YQa7nB", "pool": "3cPQaJqymFw9YsA839a95WgwfJC7tPxprBoEXD7qCkKj", "side": "buy", "base_mint": "6dy2GWsHdoCfwubgGdaqPE8ZSiGdwT9EGgaYnQo5RNpc", "base_amount": 2905164683341251, "quote_amount": 1000000000, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 1000000000, "mint_out": "6dy2GWsHdoCfwubgGdaqPE8ZSiGdwT9EGgaYnQo5RNpc", "amount_out": 2905164683341251},
        ],
        "pool_states": [
            {"pool": "3cPQaJqymFw9YsA839a95WgwfJC7tPxprBoEXD7qCkKj", "base_reserve": 166890276120065149, "quote_reserve": 58302448768, "virtual": False},
        ],
    },
    "coinpusher_rZSAoR-pump-sell.json": {
        "transfers": [
            {"mint": "So11111111111111111111111111111111111111112", "source": "GTEBTjyWDDCXinv9GKzwx5A1vDKeqWiTa9cSUWZ2rMpu", "destination": "HWEoBxYs7ssKuudEjzjmpfJVX7Dvi7wescFsVx2L5yoY", "amount": 300000, "native": True},
        ],
        "swaps": [
            {"trader": "GTEBTjyWDDCXinv9GKzwx5A1vDKeqWiTa9cSUWZ2rMpu", "pool": "CmLgDMPLDywqjzZP31vLZpaeNrj41c2mFEwUrtdsz6yo", "side": "sell", "base_mint": "4R4CLQXsm2aHXc31CDDMsYwdYEqYB9aW6vfgobW2u1Cw", "base_amount": 19274301000000, "quote_amount": 709357834, "mint_in": "4R4CLQXsm2aHXc31CDDMsYwdYEqYB9aW6vfgobW2u1Cw", "amount_in": 19274301000000, "mint_out": "So11111111111111111111111111111111111111112", "amount_out": 709357834},
        ],
        "pool_states": [
            {"pool": "CmLgDMPLDywqjzZP31vLZpaeNrj41c2mFEwUrtdsz6yo", "base_reserve": 944913989939393, "quote_reserve": 34066592867, "virtual": True},
        ],
    },
    "txparser_jupiterAggregatorV6_Route_1.json": {
        "swaps": [
            {"trader": "3huskHPRJXT5pL6RW57HaA8pXRFojx6gfNVGL9cJ2vtB", "pool": "Ho28uui8GGY2ZUe5UpW6pj8ks4cXaKXauoYMUafS7Nby", "side": "buy", "base_mint": "3p7eCgdQx1RiJUfr4t7Z8w6DpVbP7CMa9Z6Ff69tpump", "base_amount": 3861519639304, "quote_amount": 400000000, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 400000000, "mint_out": "3p7eCgdQx1RiJUfr4t7Z8w6DpVbP7CMa9Z6Ff69tpump", "amount_out": 3861519639304},
        ],
        "pool_states": [
            {"pool": "Ho28uui8GGY2ZUe5UpW6pj8ks4cXaKXauoYMUafS7Nby", "base_reserve": 560511902041533, "quote_reserve": 58316123652, "virtual": False},
        ],
    },
    "txparser_photon_pumpfun_buy_0.json": {
        "transfers": [
            {"mint": "So11111111111111111111111111111111111111112", "source": "DfMxre4cKmvogbLrPigxmibVTTQDuzjdXojWzjCXXhzj", "destination": "7ks326H4LbMVaUC8nW5FpC5EoAf5eK5pf4Dsx4HDQLpq", "amount": 60000000, "native": True},
        ],
        "swaps": [
            {"trader": "DfMxre4cKmvogbLrPigxmibVTTQDuzjdXojWzjCXXhzj", "pool": "GPgXsGCFjzNNAZtUvxmNo3G3yEouoao1XdkK1SukitdS", "side": "buy", "base_mint": "HQ4SzFMwYo8TXds1bHD2TvZdL7S75hK8w775rWrVpump", "base_amount": 5609742876530, "quote_amount": 392079207, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 392079207, "mint_out": "HQ4SzFMwYo8TXds1bHD2TvZdL7S75hK8w775rWrVpump", "amount_out": 5609742876530},
        ],
        "pool_states": [
            {"pool": "GPgXsGCFjzNNAZtUvxmNo3G3yEouoao1XdkK1SukitdS", "base_reserve": 675849686387772, "quote_reserve": 47628933894, "virtual": True},
        ],
    },
    "txparser_photon_pumpfun_buy_1.json": {
        "transfers": [
            {"mint": "So11111111111111111111111111111111111111112", "source": "2PhpwXnnnQWQCdiQwkG7Xbq5D3x72vCEGJEQ1kKrMHzi", "destination": "7ks326H4LbMVaUC8nW5FpC5EoAf5eK5pf4Dsx4HDQLpq", "amount": 5000000, "native": True},
        ],
        "swaps": [
            {"trader": "2PhpwXnnnQWQCdiQwkG7Xbq5D3x72vCEGJEQ1kKrMHzi", "pool": "7ke4MiP4CRN176wAkEdxxUVyUcHi2Qi4e8JJNNCtVeZM", "side": "buy", "base_mint": "37AmZ9EYChwuK95dnP6sYYbqcoEbbvEZYJpinSLfpump", "base_amount": 294233863538, "quote_amount": 98019801, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 98019801, "mint_out": "37AmZ9EYChwuK95dnP6sYYbqcoEbbvEZYJpinSLfpump", "amount_out": 294233863538},
        ],
        "pool_states": [
            {"pool": "7ke4MiP4CRN176wAkEdxxUVyUcHi2Qi4e8JJNNCtVeZM", "base_reserve": 310702231416960, "quote_reserve": 103604021889, "virtual": True},
        ],
    },
    "txparser_pumpfun_buy_0.json": {
        "transfers": [
            {"mint": "So11111111111111111111111111111111111111112", "source": "EfbbhahGNuhqEraRZXrwETfsaKxScngEttdQixWAW4WE", "destination": "7wrziDhcTrtGJszDMbzhpmkuJEg781muUPiBxJdHkMHb", "amount": 30000000, "native": True},
            {"mint": "So11111111111111111111111111111111111111112", "source": "EfbbhahGNuhqEraRZXrwETfsaKxScngEttdQixWAW4WE", "destination": "ADuUkR4vqLUMWXxW9gh6D6L8pMSawimctcNZ5pGwDcEt", "amount": 10000000, "native": True},
        ],
        "swaps": [
            {"trader": "EfbbhahGNuhqEraRZXrwETfsaKxScngEttdQixWAW4WE", "pool": "DizioTk7HKkYcVjiKuB6wdFXtGSisGX57mwG9PFwxXxm", "side": "buy", "base_mint": "D66sbPtYqLnwPYcUqjDktrQtb52CnfF77C3sdpNpR8Si", "base_amount": 56716561396327, "quote_amount": 3000000000, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 3000000000, "mint_out": "D66sbPtYqLnwPYcUqjDktrQtb52CnfF77C3sdpNpR8Si", "amount_out": 56716561396327},
        ],
        "pool_states": [
            {"pool": "DizioTk7HKkYcVjiKuB6wdFXtGSisGX57mwG9PFwxXxm", "base_reserve": 752265121589393, "quote_reserve": 42790764976, "virtual": True},
        ],
    },
    "txparser_pumpfun_buy_1.json": {
        "transfers": [
            {"mint": "So11111111111111111111111111111111111111112", "source": "4DdrfiDHpmx55i4SPssxVzS9ZaKLb8qr45NKY9Er9nNh", "destination": "HWEoBxYs7ssKuudEjzjmpfJVX7Dvi7wescFsVx2L5yoY", "amount": 10000000, "native": True},
        ],
        "swaps": [
            {"trader": "4DdrfiDHpmx55i4SPssxVzS9ZaKLb8qr45NKY9Er9nNh", "pool": "6g4dVVZFSX4zti3E66qWhaAC8FKR1kFzdTFsnijgV7jC", "side": "buy", "base_mint": "7nYhDYAxQdFn2DRPcjBFPQQz5qb8HeFiJv9o9w6fpump", "base_amount": 34612901212710, "quote_amount": 1000000000, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 1000000000, "mint_out": "7nYhDYAxQdFn2DRPcjBFPQQz5qb8HeFiJv9o9w6fpump", "amount_out": 34612901212710},
        ],
        "pool_states": [
            {"pool": "6g4dVVZFSX4zti3E66qWhaAC8FKR1kFzdTFsnijgV7jC", "base_reserve": 1038387067117582, "quote_reserve": 31000000888, "virtual": True},
        ],
    },
    "txparser_pumpfun_buy_bundle.json": {
        "swaps": [
            {"trader": "Gh6D6DZcASQLc2XoLpctT74KbRr4nrHF8wNptweckHoA", "pool": "Ak4Cu8ZTTbaLvAubaCSpzdrEKbpwMpkF4RArSoRLRvMF", "side": "buy", "base_mint": "ED5nyyWEzpPPiWimP8vYm7sD7TD3LAt3Q3gRTWHzPJBY", "base_amount": 12373970345963, "quote_amount": 386100226, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 386100226, "mint_out": "ED5nyyWEzpPPiWimP8vYm7sD7TD3LAt3Q3gRTWHzPJBY", "amount_out": 12373970345963},
            {"trader": "7SPkzf8DSxdemSKMEEKquRKEYrdDjcuHaQwac5nvnB4b", "pool": "Ak4Cu8ZTTbaLvAubaCSpzdrEKbpwMpkF4RArSoRLRvMF", "side": "buy", "base_mint": "ED5nyyWEzpPPiWimP8vYm7sD7TD3LAt3Q3gRTWHzPJBY", "base_amount": 12100159018198, "quote_amount": 386820768, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 386820768, "mint_out": "ED5nyyWEzpPPiWimP8vYm7sD7TD3LAt3Q3gRTWHzPJBY", "amount_out": 12100159018198},
            {"trader": "GdCFP1doq784rQTHJDuvpLchVWoMtJwdAM8MQTCHWTuz", "pool": "Ak4Cu8ZTTbaLvAubaCSpzdrEKbpwMpkF4RArSoRLRvMF", "side": "buy", "base_mint": "ED5nyyWEzpPPiWimP8vYm7sD7TD3LAt3Q3gRTWHzPJBY", "base_amount": 12023935360031, "quote_amount": 393794276, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 393794276, "mint_out": "ED5nyyWEzpPPiWimP8vYm7sD7TD3LAt3Q3gRTWHzPJBY", "amount_out": 12023935360031},
            {"trader": "8rL9duqqeBRzZZyiz77xgfzDUdbR99TPjmVk5D1LNHuL", "pool": "Ak4Cu8ZTTbaLvAubaCSpzdrEKbpwMpkF4RArSoRLRvMF", "side": "buy", "base_mint": "ED5nyyWEzpPPiWimP8vYm7sD7TD3LAt3Q3gRTWHzPJBY", "base_amount": 12044860698416, "quote_amount": 404234089, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 404234089, "mint_out": "ED5nyyWEzpPPiWimP8vYm7sD7TD3LAt3Q3gRTWHzPJBY", "amount_out": 12044860698416},
        ],
        "pool_states": [
            {"pool": "Ak4Cu8ZTTbaLvAubaCSpzdrEKbpwMpkF4RArSoRLRvMF", "base_reserve": 1009530791558799, "quote_reserve": 31886100226, "virtual": True},
            {"pool": "Ak4Cu8ZTTbaLvAubaCSpzdrEKbpwMpkF4RArSoRLRvMF", "base_reserve": 997430632540601, "quote_reserve": 32272920994, "virtual": True},
            {"pool": "Ak4Cu8ZTTbaLvAubaCSpzdrEKbpwMpkF4RArSoRLRvMF", "base_reserve": 985406697180570, "quote_reserve": 32666715270, "virtual": True},
            {"pool": "Ak4Cu8ZTTbaLvAubaCSpzdrEKbpwMpkF4RArSoRLRvMF", "base_reserve": 973361836482154, "quote_reserve": 33070949359, "virtual": True},
        ],
    },
    "txparser_pumpfun_create_0.json": {
        "transfers": [
            {"mint": "So11111111111111111111111111111111111111112", "source": "6xo262KbDXepWbF3vPTrFXysr5vJwk3mozBXmXk3hmMx", "destination": "ADuUkR4vqLUMWXxW9gh6D6L8pMSawimctcNZ5pGwDcEt", "amount": 4000000, "native": True},
        ],
        "swaps": [
            {"trader": "6xo262KbDXepWbF3vPTrFXysr5vJwk3mozBXmXk3hmMx", "pool": "CQrqvWERJtEjw2rCCQV6EqfM6V6jzTuKjhJjKNFmGB7r", "side": "buy", "base_mint": "5dNYcCZXEGfGgbdUdq7MMR7KLsNJLLLgL83wLH8Fpump", "base_amount": 34612903225806, "quote_amount": 1000000000, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 1000000000, "mint_out": "5dNYcCZXEGfGgbdUdq7MMR7KLsNJLLLgL83wLH8Fpump", "amount_out": 34612903225806},
        ],
        "pool_states": [
            {"pool": "CQrqvWERJtEjw2rCCQV6EqfM6V6jzTuKjhJjKNFmGB7r", "base_reserve": 1038387096774194, "quote_reserve": 31000000000, "virtual": True},
        ],
        "launches": [
            {"kind": "create", "mint": "5dNYcCZXEGfGgbdUdq7MMR7KLsNJLLLgL83wLH8Fpump", "creator": "6xo262KbDXepWbF3vPTrFXysr5vJwk3mozBXmXk3hmMx", "mint_authority": None, "freeze_authority": None},
        ],
    },
    "txparser_pumpfun_sell_0.json": {
        "transfers": [
            {"mint": "So11111111111111111111111111111111111111112", "source": "4DdrfiDHpmx55i4SPssxVzS9ZaKLb8qr45NKY9Er9nNh", "destination": "HWEoBxYs7ssKuudEjzjmpfJVX7Dvi7wescFsVx2L5yoY", "amount": 10000000, "native": True},
        ],
        "swaps": [
            {"trader": "4DdrfiDHpmx55i4SPssxVzS9ZaKLb8qr45NKY9Er9nNh", "pool": "6cSXbsWdUE86Nvwq8UZSQS8X8v4Rz3TP39V6gSb9Rg6f", "side": "sell", "base_mint": "CnNVDyM7GXBBcH8giuRYm17YCn6kpFTTbnd6Tx4hpump", "base_amount": 592443959000000, "quote_amount": 37437283903, "mint_in": "CnNVDyM7GXBBcH8giuRYm17YCn6kpFTTbnd6Tx4hpump", "amount_in": 592443959000000, "mint_out": "So11111111111111111111111111111111111111112", "amount_out": 37437283903},
        ],
        "pool_states": [
            {"pool": "6cSXbsWdUE86Nvwq8UZSQS8X8v4Rz3TP39V6gSb9Rg6f", "base_reserve": 1068978927601996, "quote_reserve": 30112848041, "virtual": True},
        ],
    },
    "txparser_raydiumLiquidityPoolV4_swap_0.json": {
        "transfers": [
            {"mint": "So11111111111111111111111111111111111111112", "source": "Do3UdALe5F7NRXB4uYcBzZtCbAt8ssu4a5kGZVucKhC5", "destination": "F4hJ3Ee3c5UuaorKAMfELBjYCjiiLH75haZTKqTywRP3", "amount": 3152902, "native": True},
            {"mint": "So11111111111111111111111111111111111111112", "source": "Do3UdALe5F7NRXB4uYcBzZtCbAt8ssu4a5kGZVucKhC5", "destination": "4o9p5PaYQcfNiLZCCN5ZsZckdtj6Up3xzLvSoZx8GufA", "amount": 1000000, "native": True},
        ],
        "swaps": [
            {"trader": "Do3UdALe5F7NRXB4uYcBzZtCbAt8ssu4a5kGZVucKhC5", "pool": "9xNtkAhkGNG6fPazLe7ZFmmiJ5Mss37sBx9eoya33o4q", "side": "sell", "base_mint": "2CrtdajpSb7DpMRLKP4yMtFLbCsWZjMkEvgSTf4Ypump", "base_amount": 836112233953, "quote_amount": 352936256, "mint_in": "2CrtdajpSb7DpMRLKP4yMtFLbCsWZjMkEvgSTf4Ypump", "amount_in": 836112233953, "mint_out": "So11111111111111111111111111111111111111112", "amount_out": 352936256},
        ],
        "pool_states": [
            {"pool": "9xNtkAhkGNG6fPazLe7ZFmmiJ5Mss37sBx9eoya33o4q", "base_reserve": 208538242678824, "quote_reserve": 87894104061, "virtual": False},
        ],
    },
    "txparser_raydiumLiquidityPoolV4_swap_1.json": {
        "transfers": [
            {"mint": "So11111111111111111111111111111111111111112", "source": "ECvj86nDupkVh1cDgxrJw3zJkw3ahcDiVB3pPTbpskjD", "destination": "F4hJ3Ee3c5UuaorKAMfELBjYCjiiLH75haZTKqTywRP3", "amount": 900000, "native": True},
            {"mint": "So11111111111111111111111111111111111111112", "source": "ECvj86nDupkVh1cDgxrJw3zJkw3ahcDiVB3pPTbpskjD", "destination": "4o9p5PaYQcfNiLZCCN5ZsZckdtj6Up3xzLvSoZx8GufA", "amount": 1000000, "native": True},
        ],
        "swaps": [
            {"trader": "ECvj86nDupkVh1cDgxrJw3zJkw3ahcDiVB3pPTbpskjD", "pool": "2mF8wbzawjPzDoCiGBqoinbaVxMJAwRm5wQ1dtgSLZdD", "side": "buy", "base_mint": "E8yBUD4AGdxK7MbQEf85oaAvVBuSoRsGCvX2sMxSpump", "base_amount": 43045438075, "quote_amount": 100000000, "mint_in": "So11111111111111111111111111111111111111112", "amount_in": 100000000, "mint_out": "E8yBUD4AGdxK7MbQEf85oaAvVBuSoRsGCvX2sMxSpump", "amount_out": 43045438075},
        ],
        "pool_states": [
            {"pool": "2mF8wbzawjPzDoCiGBqoinbaVxMJAwRm5wQ1dtgSLZdD", "base_reserve": 91730274337027, "quote_reserve": 212668283055, "virtual": False},
        ],
    },
    "txparser_token_transfer_0.json": {
        "transfers": [
            {"mint": "HbDHSRNnamGivWjtbYYaPJjs1o3kmwq3bXVhWsLypump", "source": "EohzXCJJxTUbHDQvawQvFAUUnCDu6TkaMhpLL6Armm5t", "destination": "4Be9CvxqHW6BYiRAxW9Q3xu1ycTMWaL5z8NX4HR3ha7t", "amount": 3000000000, "native": False},
            {"mint": "HbDHSRNnamGivWjtbYYaPJjs1o3kmwq3bXVhWsLypump", "source": "EohzXCJJxTUbHDQvawQvFAUUnCDu6TkaMhpLL6Armm5t", "destination": "69ngexW9UkgRp5KFjLpaK9XNSCxUFmps6jYmqhK3q6m9", "amount": 3000000000, "native": False},
            {"mint": "HbDHSRNnamGivWjtbYYaPJjs1o3kmwq3bXVhWsLypump", "source": "EohzXCJJxTUbHDQvawQvFAUUnCDu6TkaMhpLL6Armm5t", "destination": "7XgBprwnRfFHd287pnNQj4AZ6Yb9QE5pJ6ChQ3zhsGpJ", "amount": 3000000000, "native": False},
            {"mint": "HbDHSRNnamGivWjtbYYaPJjs1o3kmwq3bXVhWsLypump", "source": "EohzXCJJxTUbHDQvawQvFAUUnCDu6TkaMhpLL6Armm5t", "destination": "DNfuF1L62WWyW3pNakVkyGGFzVVhj4Yr52jSmdTyeBHm", "amount": 3000000000, "native": False},
            {"mint": "HbDHSRNnamGivWjtbYYaPJjs1o3kmwq3bXVhWsLypump", "source": "EohzXCJJxTUbHDQvawQvFAUUnCDu6TkaMhpLL6Armm5t", "destination": "FTg1gqW7vPm4kdU1LPM7JJnizbgPdRDy2PitKw6mY27j", "amount": 3000000000, "native": False},
        ],
    },
    "txparser_transferChecked_0.json": {
        "transfers": [
            {"mint": "AZaxNof3Dy57yXKM99BidjB9vfnzJ3EBuEqiiVnQP71F", "source": "4pGw7EECgtpsptfq5dQBYHYyvnAVSLqg5kqB2qGJSzA8", "destination": "3t9yjoGk8gYh8Lq4hQBAkFmAWfvAXJJRUoaVbqSXkQSf", "amount": 222000000000, "native": False},
            {"mint": "AZaxNof3Dy57yXKM99BidjB9vfnzJ3EBuEqiiVnQP71F", "source": "4pGw7EECgtpsptfq5dQBYHYyvnAVSLqg5kqB2qGJSzA8", "destination": "51RunQn7CH1D8JGxXzK2tjLTkX3ivSa659ctpsBZJQNY", "amount": 222000000000, "native": False},
            {"mint": "AZaxNof3Dy57yXKM99BidjB9vfnzJ3EBuEqiiVnQP71F", "source": "4pGw7EECgtpsptfq5dQBYHYyvnAVSLqg5kqB2qGJSzA8", "destination": "BTgtEpeCkZqLJKaq4WCux3fBKZSZxoncQKHLqP3HAcqh", "amount": 222000000000, "native": False},
            {"mint": "AZaxNof3Dy57yXKM99BidjB9vfnzJ3EBuEqiiVnQP71F", "source": "4pGw7EECgtpsptfq5dQBYHYyvnAVSLqg5kqB2qGJSzA8", "destination": "DNfuF1L62WWyW3pNakVkyGGFzVVhj4Yr52jSmdTyeBHm", "amount": 222000000000, "native": False},
            {"mint": "AZaxNof3Dy57yXKM99BidjB9vfnzJ3EBuEqiiVnQP71F", "source": "4pGw7EECgtpsptfq5dQBYHYyvnAVSLqg5kqB2qGJSzA8", "destination": "DzYGFQ5HdH88fYWxFc2PmJtZFKPjNsCDeu2TLkqzkUBJ", "amount": 222000000000, "native": False},
            {"mint": "AZaxNof3Dy57yXKM99BidjB9vfnzJ3EBuEqiiVnQP71F", "source": "4pGw7EECgtpsptfq5dQBYHYyvnAVSLqg5kqB2qGJSzA8", "destination": "Gocm4J9mvDR9a8kMKEP63aL6dLShb3uzc83WBFRQtZSw", "amount": 222000000000, "native": False},
            {"mint": "AZaxNof3Dy57yXKM99BidjB9vfnzJ3EBuEqiiVnQP71F", "source": "4pGw7EECgtpsptfq5dQBYHYyvnAVSLqg5kqB2qGJSzA8", "destination": "HXNsachHHNweCKsnx8Z36CymV1tdZCAkREUXdRsvDbzS", "amount": 222000000000, "native": False},
            {"mint": "AZaxNof3Dy57yXKM99BidjB9vfnzJ3EBuEqiiVnQP71F", "source": "4pGw7EECgtpsptfq5dQBYHYyvnAVSLqg5kqB2qGJSzA8", "destination": "JCg1srL3JrA16xDjo8u4S6Hska61bQvYy4KwUECEJV4d", "amount": 222000000000, "native": False},
        ],
    },
}


def load(name: str) -> dict:
    return recorded.load(DATA, name)


def projected(records: dict[str, list]) -> dict[str, list]:
    return recorded.projected(records, KEEP)


def test_every_recorded_transaction_is_covered():
    assert sorted(p.name for p in DATA.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_records_are_exact(name):
    records, _ = normalise_transaction(load(name))
    assert projected(records) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_record_names_its_transaction(name):
    tx = load(name)
    records, _ = normalise_transaction(tx)
    signature = tx["transaction"]["signatures"][0]
    assert all(r["signature"] == signature for rows in records.values() for r in rows)


def test_a_transaction_that_failed_on_chain_yields_nothing():
    tx = copy.deepcopy(load("txparser_pumpfun_buy_0.json"))
    tx["meta"]["err"] = {"InstructionError": [2, {"Custom": 6002}]}
    records, skipped = normalise_transaction(tx)
    assert not any(records.values()) and not skipped


def test_unknown_programs_are_counted_not_fatal():
    _, skipped = normalise_transaction(load("txparser_photon_pumpfun_buy_0.json"))
    assert skipped == {"BSfD6SHZigAfDWSjzD5Q41jw8LmKwtmjskPH9XW1mrRW": 1}


def test_swap_prices_are_quote_per_base_in_ui_units():
    records, _ = normalise_transaction(load("txparser_pumpfun_buy_0.json"))
    swap = records["swaps"][0]
    assert swap["price"] == pytest.approx((3_000_000_000 / 1e9) / (56_716_561_396_327 / 1e6))


def test_a_jupiter_route_is_one_swap_for_the_trader():
    records, _ = normalise_transaction(load("txparser_jupiterAggregatorV6_Route_1.json"))
    assert len(records["swaps"]) == 1 and records["swaps"][0]["aggregator"] == "jupiter_v6"
