"""The normaliser on every real mainnet transaction in ../shared/data/solana/rpc2 (exact amounts).

One file per program or route (its README lists each with its source): PumpSwap buy, sell,
buy_exact_quote_in through a router and boost_buy_and_burn (Token-2022 mints among them),
pump.fun's migrate into a PumpSwap pool followed by a buy in the same transaction, Raydium
AMM v4, CPMM and CLMM, Jupiter, DFlow, Titan and Raydium routes through Whirlpool, DLMM,
CLMM, CPMM and programs the normaliser does not read, a Token-2022 transfer, two failed
transactions. Expected values were read off each transaction's token balances and its token
instructions: a swap's amount_in is what the pools took in (what the trader paid less fees to
other people, recorded as transfers), amount_out what reached the trader; pool_amount_out is
what left the pools when a Token-2022 transfer fee (raydium-cpmm_2LMzxp9Y: sent 14,793,785,573,
received 14,645,847,717) or PumpSwap's pool-side fees came between. `signer` is set where
someone other than the trader signed (a relayer). Programs without a real example here
(Raydium LaunchLab, PumpSwap deposit/withdraw, Meteora DAMM v2, direct Whirlpool/DLMM) are
tested on transactions built from their published interfaces: test_amm_paths.py.
"""
from __future__ import annotations


import pytest
import recorded
import shared_material

from kades.solana.normalise import normalise_transaction

DATA = shared_material.DATA / "solana/rpc2"
pytestmark = shared_material.needs(DATA)

KEEP = {"transfers": ("mint", "source", "destination", "amount", "native"),
        "swaps": ("trader", "signer", "program", "pool", "side", "base_mint", "base_amount", "quote_amount",
                  "mint_in", "amount_in", "mint_out", "amount_out", "pool_amount_out"),
        "liquidity": ("pool", "program", "action", "provider", "base_mint", "base_delta", "quote_delta",
                      "base_reserve_after", "quote_reserve_after", "migration"),
        "pool_states": ("pool", "program", "base_reserve", "quote_reserve", "virtual"),
        "launches": ("kind", "mint", "creator", "mint_authority", "freeze_authority")}

EXPECTED = {
    "jupiter_2pfnv4dr.json": {
        "swaps": [
            {'trader': 'DtMUkCoeyzs35B6EpQQxPyyog6TRwXxV1W1Acp8nWBNa', 'signer': None, 'program': 'pump_fun', 'pool': 'HUCjBnmd4FoUjCCMYQ9xFz1ce1r8vWAd8uMhUQakE2FR', 'side': 'buy', 'base_mint': 'HaMv3cdfDW6357yjpDur6kb6w52BUPJrMJpR76tjpump', 'base_amount': 2583728601, 'quote_amount': 72380, 'mint_in': 'So11111111111111111111111111111111111111112', 'amount_in': 72380, 'mint_out': 'HaMv3cdfDW6357yjpDur6kb6w52BUPJrMJpR76tjpump', 'amount_out': 2583728601, 'pool_amount_out': None},
            {'trader': 'DtMUkCoeyzs35B6EpQQxPyyog6TRwXxV1W1Acp8nWBNa', 'signer': None, 'program': 'meteora_dlmm', 'pool': '3msVd34R5KxonDzyNSV5nT19UtUeJ2RF1NaQhvVPNLxL', 'side': 'sell', 'base_mint': 'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v', 'base_amount': 10000, 'quote_amount': 73111, 'mint_in': 'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v', 'amount_in': 10000, 'mint_out': 'So11111111111111111111111111111111111111112', 'amount_out': 73111, 'pool_amount_out': None},
        ],
        "pool_states": [
            {'pool': 'HUCjBnmd4FoUjCCMYQ9xFz1ce1r8vWAd8uMhUQakE2FR', 'program': 'pump_fun', 'base_reserve': 1071948996539685, 'quote_reserve': 30029413817, 'virtual': True},
            {'pool': '3msVd34R5KxonDzyNSV5nT19UtUeJ2RF1NaQhvVPNLxL', 'program': 'meteora_dlmm', 'base_reserve': 1358798485, 'quote_reserve': 19604993570, 'virtual': False},
        ],
    },
    "jupiter_43VK3TtY.json": {
    },
    "jupiter_4VhDRLUK.json": {
        "transfers": [
            {'mint': '6p6xgHyF7AeE6TZkSmFsko444wqoP15icUSqi2jfGiPN', 'source': '8VCfQcnssNJznDqDoDDuzoKhdxgZWwwe5ikcKbAVWet5', 'destination': '4cLUBQKZgCv2AqGXbh8ncGhrDRcicUe3WSDzjgPY2oTA', 'amount': 437, 'native': False},
        ],
        "swaps": [
            {'trader': '8VCfQcnssNJznDqDoDDuzoKhdxgZWwwe5ikcKbAVWet5', 'signer': None, 'program': 'orca_whirlpool', 'pool': 'FgTCR1ufcaTZMwZZYhNRhJm2K3HgMA8V8kXtdqyttm19', 'side': 'sell', 'base_mint': '6p6xgHyF7AeE6TZkSmFsko444wqoP15icUSqi2jfGiPN', 'base_amount': 49563, 'quote_amount': 1265445, 'mint_in': '6p6xgHyF7AeE6TZkSmFsko444wqoP15icUSqi2jfGiPN', 'amount_in': 49563, 'mint_out': 'JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN', 'amount_out': 1265445, 'pool_amount_out': None},
        ],
        "pool_states": [
            {'pool': 'GGztQqQ6pCPaJQnNpXBgELr5cs3WwDakRbh1iEMzjgSJ', 'program': 'orca_whirlpool', 'base_reserve': 26482927, 'quote_reserve': 276186969, 'virtual': False},
            {'pool': 'FgTCR1ufcaTZMwZZYhNRhJm2K3HgMA8V8kXtdqyttm19', 'program': 'orca_whirlpool', 'base_reserve': 147713797837, 'quote_reserve': 81564918604, 'virtual': False},
        ],
    },
    "jupiter_58FymkjJ.json": {
    },
    "jupiter_5LuTa5k9.json": {
        "transfers": [
            {'mint': 'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v', 'source': 'DtMUkCoeyzs35B6EpQQxPyyog6TRwXxV1W1Acp8nWBNa', 'destination': '9yj3zvLS3fDMqi1F8zhkaWfq8TZpZWHe6cz1Sgt7djXf', 'amount': 9350, 'native': False},
        ],
        "swaps": [
            {'trader': 'DtMUkCoeyzs35B6EpQQxPyyog6TRwXxV1W1Acp8nWBNa', 'signer': None, 'program': 'ZERor4xhbUycZ6gb9ntrhqscUcZmAbQDjEAtCf4hbZY', 'pool': '8cjeuVV3KQ9k8RqW1JUyCfey2TDAhuo7f4hPDMeGfxv', 'side': 'buy', 'base_mint': 'JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN', 'base_amount': 2143812, 'quote_amount': 1090650, 'mint_in': 'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v', 'amount_in': 1090650, 'mint_out': 'JUPyiwrYJFskUPiHa7hkeR8VUtAeFoSYbKedZNsDvCN', 'amount_out': 2143812, 'pool_amount_out': None},
        ],
    },
    "jupiter_eEWaGsbR.json": {
        "swaps": [
            {'trader': 'ChT3tRuyF1LN9ieVEmTkzogouvdBw644mHi8eVHSfJC', 'signer': None, 'program': 'raydium_clmm', 'pool': '8HNvcLkiVUkqdLvK3ADmRMNR4kEQYCCErK1TkpLe1x6N', 'side': 'sell', 'base_mint': 'EtBBicy9MGgQyVaGDY4SqHgjGvms1wD4GzPTc47cGZF2', 'base_amount': 6714832771688129, 'quote_amount': 2018432030, 'mint_in': 'EtBBicy9MGgQyVaGDY4SqHgjGvms1wD4GzPTc47cGZF2', 'amount_in': 6714832771688129, 'mint_out': 'So11111111111111111111111111111111111111112', 'amount_out': 2018432030, 'pool_amount_out': None},
        ],
        "pool_states": [
            {'pool': '8HNvcLkiVUkqdLvK3ADmRMNR4kEQYCCErK1TkpLe1x6N', 'program': 'raydium_clmm', 'base_reserve': 205600276205, 'quote_reserve': 484018856643131493, 'virtual': False},
            {'pool': 'coj59LYbLc6DhMwnxxfPc9mUiknjFSsW4XcuYw4DMPk', 'program': 'orca_whirlpool', 'base_reserve': 1585946817964, 'quote_reserve': 818400129524, 'virtual': False},
            {'pool': '6t5fJwGxmTy2gWiq6CiLw2roZc93UanvANypMYQYHKGh', 'program': 'meteora_dlmm', 'base_reserve': 3875507819420, 'quote_reserve': 11841802878, 'virtual': False},
        ],
    },
    "pumpfun_31V8YGSQ.json": {
        "transfers": [
            {'mint': 'So11111111111111111111111111111111111111112', 'source': '3K19qbyL5epuTem9DYzLveXzt7TV4cWjidPfbRbUre7G', 'destination': '7VtfL8fvgNfhz17qKRMjzQEXgbdpnHHHQRh54R9jP2RJ', 'amount': 64929885, 'native': False},
            {'mint': 'So11111111111111111111111111111111111111112', 'source': '3K19qbyL5epuTem9DYzLveXzt7TV4cWjidPfbRbUre7G', 'destination': 'EHAAiTxcdDwQ3U4bU6YcMsQGaekdzLS3B5SmYo46kJtL', 'amount': 64929885, 'native': False},
            {'mint': 'So11111111111111111111111111111111111111112', 'source': '3K19qbyL5epuTem9DYzLveXzt7TV4cWjidPfbRbUre7G', 'destination': '2tKFVM5dCbaMSvtQhHgQKE9VTPZuMrLjtk3hNE3aeRCJ', 'amount': 41890249, 'native': False},
            {'mint': 'So11111111111111111111111111111111111111112', 'source': 'niggerd597QYedtvjQDVHZTCCGyJrwHNm2i49dkm5zS', 'destination': 'Dd7K2Fp7AtoN8xCghKDRmyqr5U169t48Tw5fEd3wT9mq', 'amount': 12000000, 'native': True},
        ],
        "swaps": [
            {'trader': 'niggerd597QYedtvjQDVHZTCCGyJrwHNm2i49dkm5zS', 'signer': None, 'program': 'pumpswap', 'pool': '7ugTEN5mq5kGURByfXrK1AqTAJ76wQMauggskosVzEoK', 'side': 'buy', 'base_mint': '6Aixvhgirbn8rHmAtFnwHNBqgxtenKDz8ycvHeQepump', 'base_amount': 29195761127671, 'quote_amount': 13966208735, 'mint_in': 'So11111111111111111111111111111111111111112', 'amount_in': 13966208735, 'mint_out': '6Aixvhgirbn8rHmAtFnwHNBqgxtenKDz8ycvHeQepump', 'amount_out': 29195761127671, 'pool_amount_out': None},
        ],
        "liquidity": [
            {'pool': '7ugTEN5mq5kGURByfXrK1AqTAJ76wQMauggskosVzEoK', 'program': 'pumpswap', 'action': 'create', 'provider': '3K19qbyL5epuTem9DYzLveXzt7TV4cWjidPfbRbUre7G', 'base_mint': '6Aixvhgirbn8rHmAtFnwHNBqgxtenKDz8ycvHeQepump', 'base_delta': 206900000000000, 'quote_delta': 84990359062, 'base_reserve_after': 206900000000000, 'quote_reserve_after': 84990359062, 'migration': {'program': 'pump_fun', 'bonding_curve': 'DCuxErCF1NpwZboQvWHedd12yYiA4tbLUtdoeEizE8Ex'}},
        ],
        "pool_states": [
            {'pool': '7ugTEN5mq5kGURByfXrK1AqTAJ76wQMauggskosVzEoK', 'program': 'pumpswap', 'base_reserve': 206900000000000, 'quote_reserve': 84990359062, 'virtual': False},
            {'pool': '7ugTEN5mq5kGURByfXrK1AqTAJ76wQMauggskosVzEoK', 'program': 'pumpswap', 'base_reserve': 177704238872329, 'quote_reserve': 98956567797, 'virtual': False},
        ],
        "launches": [
            {'kind': 'initialize_mint', 'mint': '3fhZKHkQ65deETaKyS5jERQUuY2HkozWaX7gUtVgbLAZ', 'creator': 'niggerd597QYedtvjQDVHZTCCGyJrwHNm2i49dkm5zS', 'mint_authority': '7ugTEN5mq5kGURByfXrK1AqTAJ76wQMauggskosVzEoK', 'freeze_authority': None},
        ],
    },
    "pumpswap_2zNeSn8c.json": {
        "transfers": [
            {'mint': 'So11111111111111111111111111111111111111112', 'source': 'G2341KGbNxuSAfCfqNuPhfLQtPB94hPfgyVPC89Faor4', 'destination': 'FGDQFsnbmq2xdtjrzeAaugZ2psy2RKqANTAhUmBr17PN', 'amount': 34280, 'native': False},
            {'mint': 'So11111111111111111111111111111111111111112', 'source': 'G2341KGbNxuSAfCfqNuPhfLQtPB94hPfgyVPC89Faor4', 'destination': '62qc2CNXwrYqQScmEdiZFFAnJR262PxWEuNQtxfafNgV', 'amount': 1805, 'native': False},
            {'mint': 'So11111111111111111111111111111111111111112', 'source': 'G2341KGbNxuSAfCfqNuPhfLQtPB94hPfgyVPC89Faor4', 'destination': 'HV1KXxWFaSeriyFvXyx48FqG9BoFbfinB8njCJonqP7K', 'amount': 1, 'native': False},
            {'mint': 'So11111111111111111111111111111111111111112', 'source': 'G2341KGbNxuSAfCfqNuPhfLQtPB94hPfgyVPC89Faor4', 'destination': 'CyL8mfycXYbWHVoTTsfvnAfF2MvfcqeQAmmsqNQLxF7g', 'amount': 200000, 'native': True},
        ],
        "swaps": [
            {'trader': 'G2341KGbNxuSAfCfqNuPhfLQtPB94hPfgyVPC89Faor4', 'signer': None, 'program': 'pumpswap', 'pool': '9S3zAF8zVffQvD6EfqaVAdRbnYjVW51kVQDH2vHjk4vq', 'side': 'buy', 'base_mint': '8k1DvnFBsbuWJw2t4JqTibR7cAgqadMveqiykMr1pump', 'base_amount': 4374143343, 'quote_amount': 3615608, 'mint_in': 'So11111111111111111111111111111111111111112', 'amount_in': 3615608, 'mint_out': '8k1DvnFBsbuWJw2t4JqTibR7cAgqadMveqiykMr1pump', 'amount_out': 4374143343, 'pool_amount_out': None},
        ],
        "pool_states": [
            {'pool': '9S3zAF8zVffQvD6EfqaVAdRbnYjVW51kVQDH2vHjk4vq', 'program': 'pumpswap', 'base_reserve': 147928614899239, 'quote_reserve': 122035346330, 'virtual': False},
        ],
    },
    "pumpswap_3MoYTvzY.json": {
        "transfers": [
            {'mint': 'So11111111111111111111111111111111111111112', 'source': 'HTVZVEQMBsNanubDPTs3CxDAEGNFQHJY8c1441iy2S5r', 'destination': 'DttWaMuVvTiduZRnguLF7jNxTgiMBZ1hyAumKUiL2KRL', 'amount': 100000, 'native': True},
        ],
        "pool_states": [
            {'pool': 'E5WvAEhX1LKCtCz9BuzBZ4zwEzt4kYS1Du4jxGK1R3Lc', 'program': 'pumpswap', 'base_reserve': 140201826064830, 'quote_reserve': 107917373902, 'virtual': False},
        ],
    },
    "pumpswap_4UrrW5HM.json": {
        "transfers": [
            {'mint': 'So11111111111111111111111111111111111111112', 'source': '2tHBxC4SgowNC9EhzAVMAMQwzJ7PzbjPjEvX6CQpDMgZ', 'destination': '7riA7jxAWViCLNZ4YJP9fuXeWQCYm5hfBxKz842v6EuN', 'amount': 13835, 'native': False},
            {'mint': 'So11111111111111111111111111111111111111112', 'source': '2tHBxC4SgowNC9EhzAVMAMQwzJ7PzbjPjEvX6CQpDMgZ', 'destination': '62qc2CNXwrYqQScmEdiZFFAnJR262PxWEuNQtxfafNgV', 'amount': 462, 'native': False},
            {'mint': 'So11111111111111111111111111111111111111112', 'source': '2tHBxC4SgowNC9EhzAVMAMQwzJ7PzbjPjEvX6CQpDMgZ', 'destination': '5eHhjP8JaYkz83CWwvGU2uMUXefd3AazWGx4gpcuEEYD', 'amount': 461, 'native': False},
        ],
        "swaps": [
            {'trader': '2tHBxC4SgowNC9EhzAVMAMQwzJ7PzbjPjEvX6CQpDMgZ', 'signer': None, 'program': 'pumpswap', 'pool': 'HyLTPacbYR4V8yQw5bbWwAETZkjcsRw9xzCbayMnU45o', 'side': 'buy', 'base_mint': 'CZJfrAmMs5Cz4H22PWzfqTJu5FkP7Q2Vvx1oPVL9pump', 'base_amount': 187224277, 'quote_amount': 1848310, 'mint_in': 'So11111111111111111111111111111111111111112', 'amount_in': 1848310, 'mint_out': 'CZJfrAmMs5Cz4H22PWzfqTJu5FkP7Q2Vvx1oPVL9pump', 'amount_out': 187224277, 'pool_amount_out': None},
        ],
        "pool_states": [
            {'pool': 'HyLTPacbYR4V8yQw5bbWwAETZkjcsRw9xzCbayMnU45o', 'program': 'pumpswap', 'base_reserve': 46881578398106, 'quote_reserve': 444317585481, 'virtual': False},
        ],
    },
    "pumpswap_5FoZuu1E.json": {
        "swaps": [
            {'trader': 'Fwb357c8NyzVaQWJEuDx5jkJ6ApmX4eZ7PpwKshfmZj5', 'signer': None, 'program': 'pumpswap', 'pool': '9ix2AXs4oaREj9jUcnqqftyzAsQHd3RaQmmELm7XHRmp', 'side': 'sell', 'base_mint': '7NPzZwrPVUyvtj1cs8T55wPeiA3qjc9vrcxt59nB9poc', 'base_amount': 175477493, 'quote_amount': 126879, 'mint_in': '7NPzZwrPVUyvtj1cs8T55wPeiA3qjc9vrcxt59nB9poc', 'amount_in': 175477493, 'mint_out': 'So11111111111111111111111111111111111111112', 'amount_out': 126879, 'pool_amount_out': 128164},
        ],
        "pool_states": [
            {'pool': '9ix2AXs4oaREj9jUcnqqftyzAsQHd3RaQmmELm7XHRmp', 'program': 'pumpswap', 'base_reserve': 155515509330373, 'quote_reserve': 96227951833, 'virtual': False},
        ],
    },
    "pumpswap_5bvyp1no.json": {
        "transfers": [
            {'mint': 'EWV6bjhKF5zkXANCdWPvDs7dofRVk4pKyVTitqgEWj8E', 'source': '95rVs91daKmzom4SM41dg4MRmy5M7rMEHPerenZwWaCq', 'destination': 'JCRGumoE9Qi5BBgULTgdgTLjSgkCMSbF62ZZfGs84JeU', 'amount': 233765840826, 'native': False},
        ],
        "swaps": [
            {'trader': '95rVs91daKmzom4SM41dg4MRmy5M7rMEHPerenZwWaCq', 'signer': None, 'program': 'pumpswap', 'pool': 'CW644FAJoQE9B9MGqmdfDseS4XfsmgS77ve7zJDJxiPS', 'side': 'sell', 'base_mint': 'EWV6bjhKF5zkXANCdWPvDs7dofRVk4pKyVTitqgEWj8E', 'base_amount': 468700510855632, 'quote_amount': 201692493, 'mint_in': 'EWV6bjhKF5zkXANCdWPvDs7dofRVk4pKyVTitqgEWj8E', 'amount_in': 468700510855632, 'mint_out': 'So11111111111111111111111111111111111111112', 'amount_out': 201692493, 'pool_amount_out': None},
        ],
        "pool_states": [
            {'pool': 'CW644FAJoQE9B9MGqmdfDseS4XfsmgS77ve7zJDJxiPS', 'program': 'pumpswap', 'base_reserve': 344503076480687631, 'quote_reserve': 148415933487, 'virtual': False},
        ],
    },
    "raydium-amm-v4_QfFVu1P4.json": {
        "swaps": [
            {'trader': 'FQT9SSwEZ6UUQxsmTzgt5JzjrS4M5zm13M1QiYF8TEo6', 'signer': None, 'program': 'raydium_v4', 'pool': 'EXfpndEFLDYdvkhS7cvuGd6yzzbQcFiFE5EUsVQkb4Nt', 'side': 'buy', 'base_mint': 'DNrmDMs2czDaAwgzg2BmvM7Jn5ZqA6VN5huRqCrSpump', 'base_amount': 4036960523, 'quote_amount': 10000000, 'mint_in': 'So11111111111111111111111111111111111111112', 'amount_in': 10000000, 'mint_out': 'DNrmDMs2czDaAwgzg2BmvM7Jn5ZqA6VN5huRqCrSpump', 'amount_out': 4036960523, 'pool_amount_out': None},
        ],
        "pool_states": [
            {'pool': 'EXfpndEFLDYdvkhS7cvuGd6yzzbQcFiFE5EUsVQkb4Nt', 'program': 'raydium_v4', 'base_reserve': 135498863581918, 'quote_reserve': 334816633941, 'virtual': False},
        ],
    },
    "raydium-clmm_2cd7QQSB.json": {
        "swaps": [
            {'trader': '98QXkwe6DThTsTq7tukKF4g9Wc6WnRbZyTBZ1iBupY39', 'signer': None, 'program': 'raydium_clmm', 'pool': 'EM4Fvu4G3qLuSNdBeturuHzqh871hh1evxY7RLBoF6ZL', 'side': 'buy', 'base_mint': '7eR1yv7pUzhaqQneKJ2fmVTRuzY61ja5KwfbBrLsq1Gu', 'base_amount': 807769528641, 'quote_amount': 300000000, 'mint_in': 'So11111111111111111111111111111111111111112', 'amount_in': 300000000, 'mint_out': '7eR1yv7pUzhaqQneKJ2fmVTRuzY61ja5KwfbBrLsq1Gu', 'amount_out': 807769528641, 'pool_amount_out': None},
        ],
        "pool_states": [
            {'pool': 'EM4Fvu4G3qLuSNdBeturuHzqh871hh1evxY7RLBoF6ZL', 'program': 'raydium_clmm', 'base_reserve': 657651035772212, 'quote_reserve': 244355085955, 'virtual': False},
        ],
    },
    "raydium-clmm_JiqYGkWc.json": {
        "swaps": [
            {'trader': 'FQT9SSwEZ6UUQxsmTzgt5JzjrS4M5zm13M1QiYF8TEo6', 'signer': None, 'program': 'raydium_clmm', 'pool': '4RyuSgGdYeE7Qd4eKsuauTevWRreSfGScYqaygMEJXSq', 'side': 'sell', 'base_mint': 'HeLp6NuQkmYB4pYWo2zYs22mESHXPQYzXbB8n4V98jwC', 'base_amount': 21898077, 'quote_amount': 28168, 'mint_in': 'HeLp6NuQkmYB4pYWo2zYs22mESHXPQYzXbB8n4V98jwC', 'amount_in': 21898077, 'mint_out': 'So11111111111111111111111111111111111111112', 'amount_out': 28168, 'pool_amount_out': None},
        ],
        "pool_states": [
            {'pool': '4RyuSgGdYeE7Qd4eKsuauTevWRreSfGScYqaygMEJXSq', 'program': 'raydium_clmm', 'base_reserve': 51518656793, 'quote_reserve': 10667087, 'virtual': False},
            {'pool': 'ExcBWu8fGPdJiaF1b1z3iEef38sjQJks8xvj6M85pPY6', 'program': 'raydium_clmm', 'base_reserve': 24814019869, 'quote_reserve': 263334328396, 'virtual': False},
        ],
    },
    "raydium-cpmm_2LMzxp9Y.json": {
        "transfers": [
            {'mint': 'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v', 'source': '8qrd91GRSF8YdB5HPymSrkoiyZmpSw4ZBYwZ18khAETi', 'destination': 'R4rNJHaffSUotNmqSKNEfDcJE8A7zJUkaoM5Jkd7cYX', 'amount': 112089, 'native': False},
            {'mint': 'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v', 'source': '8qrd91GRSF8YdB5HPymSrkoiyZmpSw4ZBYwZ18khAETi', 'destination': 'CzU8MaRcwvwUoNkwJFLbvtFWJugcEXAhDDQqNFE4ybb7', 'amount': 74725, 'native': False},
        ],
        "swaps": [
            {'trader': '8qrd91GRSF8YdB5HPymSrkoiyZmpSw4ZBYwZ18khAETi', 'signer': 'AgmLJBMDCqWynYnQiPCuj9ewsNNsBJXyzoUhD9LJzN51', 'program': 'orca_whirlpool', 'pool': 'ASAxmEaTT1HFe3mVC3zbKDE4tuB28W7732XQrEMBM5W2', 'side': 'buy', 'base_mint': 'DQysBW79uHzZAWd2ahVQrf89CuSFqVzuNA3ijHbjVJfG', 'base_amount': 14645847717, 'quote_amount': 9154519, 'mint_in': 'EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v', 'amount_in': 9154519, 'mint_out': 'DQysBW79uHzZAWd2ahVQrf89CuSFqVzuNA3ijHbjVJfG', 'amount_out': 14645847717, 'pool_amount_out': 14793785573},
        ],
        "pool_states": [
            {'pool': 'ASAxmEaTT1HFe3mVC3zbKDE4tuB28W7732XQrEMBM5W2', 'program': 'orca_whirlpool', 'base_reserve': 36489360455, 'quote_reserve': 334046644431, 'virtual': False},
            {'pool': 'GNNDoaH6fEZ8NHhzYRbZuwGTkTfSZhzUmwJU8j9GbD8r', 'program': 'raydium_cpmm', 'base_reserve': 65886262125869, 'quote_reserve': 25444432211, 'virtual': False},
        ],
    },
    "raydium-cpmm_4v27ccyr.json": {
        "transfers": [
            {'mint': 'So11111111111111111111111111111111111111112', 'source': 'Cr5cUWgWEdEW3ry6bjCeJbvXdH1X1pA5RceyXBZDXABM', 'destination': '2rbMgYvzAb3xDk6vXrzKkY3VwsmyDZsJTkvB3JJYsRzA', 'amount': 12150, 'native': False},
        ],
        "swaps": [
            {'trader': 'Cr5cUWgWEdEW3ry6bjCeJbvXdH1X1pA5RceyXBZDXABM', 'signer': None, 'program': 'raydium_cpmm', 'pool': '2VhaFEYL1exY86u8tTisfRjNwtCkX8bNbupHvSKzJuQJ', 'side': 'buy', 'base_mint': 'SKRbvo6Gf7GondiT3BbTfuRDPqLWei4j2Qy2NPGZhW3', 'base_amount': 15650000, 'quote_amount': 1487850, 'mint_in': 'So11111111111111111111111111111111111111112', 'amount_in': 1487850, 'mint_out': 'SKRbvo6Gf7GondiT3BbTfuRDPqLWei4j2Qy2NPGZhW3', 'amount_out': 15650000, 'pool_amount_out': None},
        ],
        "pool_states": [
            {'pool': '2VhaFEYL1exY86u8tTisfRjNwtCkX8bNbupHvSKzJuQJ', 'program': 'raydium_cpmm', 'base_reserve': 18222331697, 'quote_reserve': 4102850918, 'virtual': False},
            {'pool': '3WYho5XjXfAzGsXdwdkFHw84rH6kCGCQnSYg6wHqypQo', 'program': 'raydium_cpmm', 'base_reserve': 1587293688874, 'quote_reserve': 903938579, 'virtual': False},
            {'pool': 'DEHrWvTA1npSrcVt7xnWoyxdEgtpD4ZstmEeB2QLgFJj', 'program': 'raydium_cpmm', 'base_reserve': 475287893242, 'quote_reserve': 1159427430, 'virtual': False},
        ],
    },
    "token2022_4G24SgaZ.json": {
        "transfers": [
            {'mint': 'HeLp6NuQkmYB4pYWo2zYs22mESHXPQYzXbB8n4V98jwC', 'source': 'EMmTjuHsYCYX7vgPcQ2QVbNwYAwcvGoSMCEaHKc19DdE', 'destination': 'BYh4CfuGDvFMKaZp3RPmkw9y6qg3sWukA2TiGJDeLKZi', 'amount': 10000000, 'native': False},
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


def test_a_token_2022_transfer_fee_makes_received_less_than_sent():
    (swap,) = normalise_transaction(load("raydium-cpmm_2LMzxp9Y.json"))[0]["swaps"]
    assert (swap["pool_amount_out"], swap["amount_out"]) == (14_793_785_573, 14_645_847_717)
    assert swap["signer"] == "AgmLJBMDCqWynYnQiPCuj9ewsNNsBJXyzoUhD9LJzN51"  # a relayer paid the fee
    assert swap["trader"] == "8qrd91GRSF8YdB5HPymSrkoiyZmpSw4ZBYwZ18khAETi"  # whose tokens moved


def test_the_migration_creates_the_pool_before_the_buy():
    records, _ = normalise_transaction(load("pumpfun_31V8YGSQ.json"))
    (created,) = records["liquidity"]
    assert created["action"] == "create" and created["quote_reserve_before"] == 0
    assert created["migration"]["bonding_curve"] == "DCuxErCF1NpwZboQvWHedd12yYiA4tbLUtdoeEizE8Ex"
    first, second = records["pool_states"]
    assert (first["base_reserve"], first["quote_reserve"]) == (created["base_reserve_after"], created["quote_reserve_after"])
    (buy,) = records["swaps"]
    assert second["base_reserve"] == first["base_reserve"] - buy["base_amount"]


def test_routers_and_programs_not_read_are_counted_not_fatal():
    _, skipped = normalise_transaction(load("pumpswap_2zNeSn8c.json"))
    assert skipped == {"6m2CDdhRgxpH4WjvdzxAYbGxwdGUz5MziiL5jek2kBma": 1}
    _, skipped = normalise_transaction(load("jupiter_4VhDRLUK.json"))
    assert set(skipped) == {"SoLFiHG9TfgtdUXUjWAxi3LtvYuFyDLVhBWxdMZxyCe", "obriQD1zbpyLz95G5n7nJe6a4DPjpFwa5XYPoNm113y",
                            "3i5JeuZuUxeKtVysUnwQNGerJP2bSMX9fTFfS4Nxe3Br"}


@pytest.mark.parametrize("name", ["jupiter_43VK3TtY.json", "jupiter_58FymkjJ.json"])
def test_failed_transactions_yield_nothing(name):
    records, skipped = normalise_transaction(load(name))
    assert not any(records.values()) and not skipped


def test_mangled_transactions_never_crash_the_normaliser():
    """Seeded: instruction data and account lists cut short or shuffled, inner instructions or
    token balances missing. Unknown shapes are read as far as they go, never fatal."""
    import copy
    import random

    rng = random.Random(15)
    names = sorted(EXPECTED)
    for _ in range(300):
        tx = copy.deepcopy(load(rng.choice(names)))
        meta = tx["meta"]
        groups = [tx["transaction"]["message"]["instructions"]] + [g["instructions"] for g in meta["innerInstructions"]]
        for ix in (ix for group in groups for ix in group):
            roll = rng.random()
            if roll < 0.05:
                ix["data"] = ix["data"][:rng.randint(0, len(ix["data"]))]
            elif roll < 0.1:
                ix["accounts"] = ix["accounts"][:rng.randint(0, len(ix["accounts"]))]
            elif roll < 0.12:
                rng.shuffle(ix["accounts"])
        if rng.random() < 0.2:
            meta["innerInstructions"] = []
        for side in ("preTokenBalances", "postTokenBalances"):
            if meta[side] and rng.random() < 0.2:
                meta[side].pop(rng.randrange(len(meta[side])))
        records, _ = normalise_transaction(tx)
        assert all(r["signature"] == tx["transaction"]["signatures"][0] for rows in records.values() for r in rows)
