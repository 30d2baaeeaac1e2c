"""A small Solana JSON-RPC client: getSlot and getBlock, with retries that respect HTTP 429.

Temporary trouble (network errors, 5xx, 429, a node's passing JSON-RPC errors) is retried
with exponential backoff, waiting at least what `Retry-After` asks; after `max_attempts` it
raises TemporaryFailure.
"""
from __future__ import annotations

import itertools
import time
from typing import Any

import httpx

from kades import clients
from kades.errors import TemporaryFailure

# JSON-RPC errors of getBlock meaning "there is no block here, move on" (Solana's own codes),
# when their message says the slot was skipped, as Solana's own do ("Slot N was skipped, or
# missing ..."): QuickNode's gateway answers its rate limit with -32007 too ("50/second
# request limit reached"), and every slot asked meanwhile was passed over without a word.
SKIPPED_SLOT_CODES = (-32007, -32009)  # slot skipped / missing in long-term storage
NOT_YET_CODES = (-32004, -32014)       # block not available yet / status not yet available
CLEANED_UP_CODE = -32001               # the node no longer has the block: before its first
# A node's passing trouble, retried as a 5xx is: behind (-32005), long-term storage to try
# again (-32019), internal (-32603), minimum context slot not reached (-32016). Each exited
# the source at once ("an error that waiting will not cure"), restarting the pod.
PASSING_CODES = (-32005, -32019, -32603, -32016)
# ...and a gateway's rate limit, whatever code it comes with
RATE_LIMITED = ("limit reached", "rate limit", "too many requests")


SKIP_PROOF_BLOCKS = 16  # blocks asked for from a slot on, to prove it skipped


class RpcError(RuntimeError):
    def __init__(self, code: int, message: str):
        super().__init__(f"RPC error {code}: {message}")
        self.code, self.message = code, message

    @property
    def passing(self) -> bool:
        """Whether waiting may cure it (retried as a 5xx is)."""
        return self.code in PASSING_CODES or any(words in self.message.lower()
                                                 for words in RATE_LIMITED)

    @property
    def skipped(self) -> bool:
        """Whether it says the slot has no block."""
        return self.code in SKIPPED_SLOT_CODES and "skipped" in self.message.lower()


class SolanaRpc:
    def __init__(self, url: str, *, timeout_s: float = 30.0, max_attempts: int = 6, backoff_s: float = 0.5,
                 commitment: str = "confirmed", sleep=time.sleep):
        self.url, self.timeout_s, self.max_attempts = url, timeout_s, max_attempts
        self.backoff_s, self.commitment, self.sleep = backoff_s, commitment, sleep
        self._ids = itertools.count(1)

    def call(self, method: str, params: list[Any]) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        for attempt in range(self.max_attempts):
            wait = self.backoff_s * 2 ** attempt
            try:
                response = clients.http_client().post(self.url, json=request, timeout=self.timeout_s)
            except httpx.HTTPError as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 429 or response.status_code >= 500:
                    problem = f"HTTP {response.status_code}"
                    retry_after = response.headers.get("retry-after", "")
                    if retry_after.replace(".", "", 1).isdigit():
                        wait = max(wait, float(retry_after))
                else:
                    try:
                        return _result(method, response)
                    except RpcError as error:
                        if not error.passing:
                            raise
                        problem = str(error)
            if attempt + 1 < self.max_attempts:
                self.sleep(wait)
        raise TemporaryFailure(f"{self.url} {method}: {problem} after {self.max_attempts} attempts")

    def get_slot(self) -> int:
        slot = self.call("getSlot", [{"commitment": self.commitment}])
        if not isinstance(slot, int) or isinstance(slot, bool):
            raise RpcError(0, f"getSlot answered {_excerpt(repr(slot))}, not a slot number")
        return slot

    def skipped(self, slot: int, tip: int) -> bool:
        """Whether `slot` is proven to have no block: the node's blocks from `slot` on (up to
        `tip`) list a later slot and not it. An empty list says nothing: behind a load balancer
        a node a few slots behind answers [] for slots past its own tip (and its getBlock "not
        available" too), and taking that for "skipped" lost one block in ten at the tip.
        getBlocksWithLimit, not getBlocks of `slot` .. `tip`: a node refuses a range over
        500,000 slots (a source resuming two days behind exited), and a long one is a long
        answer."""
        limit = max(1, min(SKIP_PROOF_BLOCKS, tip - slot + 1))
        slots = self.call("getBlocksWithLimit", [slot, limit, {"commitment": self.commitment}])
        if not isinstance(slots, list):
            raise RpcError(0, f"getBlocksWithLimit answered {_excerpt(repr(slots))}, not a list of slots")
        return slot not in slots and any(isinstance(s, int) and slot < s <= tip for s in slots)

    def first_available(self) -> int:
        """The oldest slot whose block the node still has (getFirstAvailableBlock)."""
        first = self.call("getFirstAvailableBlock", [])
        if not isinstance(first, int) or isinstance(first, bool):
            raise RpcError(0, f"getFirstAvailableBlock answered {_excerpt(repr(first))}, not a slot")
        return first

    def get_block(self, slot: int, *, encoding: str = "json") -> dict | None:
        """The block of `slot` (with `slot` added), or None for a slot without a block;
        RpcError -32004 (not available yet) for a `null` answer, which is what a node gives
        for a block it has not confirmed (Solana's getBlock: "if specified block is not
        confirmed, the result will be null"): taken for "no block", the slot was passed."""
        try:
            block = self.call("getBlock", [slot, {"encoding": encoding, "maxSupportedTransactionVersion": 0,
                                                  "transactionDetails": "full", "rewards": False,
                                                  "commitment": self.commitment}])
        except RpcError as error:
            if error.skipped:
                return None
            raise
        if block is None:
            raise RpcError(NOT_YET_CODES[0], f"getBlock {slot}: null (not confirmed yet)")
        if not isinstance(block, dict):
            raise RpcError(0, f"getBlock answered {_excerpt(repr(block))}, not a block")
        return {**block, "slot": slot}


def _excerpt(text: str, size: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[:size] + "..."


def _result(method: str, response: httpx.Response) -> Any:
    """The `result` of a node's answer; RpcError for a JSON-RPC error, and for an answer that
    waiting will not change (a 4xx such as a refused API key, a body that is no JSON-RPC
    answer, as a proxy's HTML page)."""
    if response.status_code >= 400:
        raise RpcError(response.status_code, f"{method}: HTTP {response.status_code}: "
                                             f"{_excerpt(response.text)}")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not ("result" in answer or "error" in answer):
        raise RpcError(0, f"{method}: not a JSON-RPC answer ({response.headers.get('content-type', '')}): "
                          f"{_excerpt(response.text)}")
    if "error" in answer:
        error = answer["error"] if isinstance(answer["error"], dict) else {"message": answer["error"]}
        code = error.get("code", 0)
        raise RpcError(code if isinstance(code, int) else 0, str(error.get("message", "")))
    return answer["result"]
