"""The anomaly likelihood (kades.temporal.likelihood) as Cython compiled it (shared/setup.py)
against the same source run as Python, which is what a machine without a C compiler runs:
the same surprise and the same state to the last bit, -0.0, NaN and infinities included, on
random raw scores and through the whole alert policy on simulated markets."""
from __future__ import annotations

import collections
import doctest
import json
import math
import random
import types

import pytest
from compiled_source import compiled as compiled_module, source_module
from policy_workload import bits

from kades.simulate.market import simulate_market
from kades.temporal import likelihood, threshold
from kades.temporal.ensemble import KIND_ORDER
from kades.temporal.policy import new_monitor, step
from kades.temporal.threshold import RARE_KINDS

needs_compiled = pytest.mark.skipif(
    not compiled_module(likelihood),
    reason="kades.temporal.likelihood is not compiled here (no C compiler at `make setup`)")


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "source"])
def test_the_module_examples(compiled):
    """likelihood.py's docstring examples (pytest.ini keeps the file out of --doctest-modules)."""
    if compiled and not compiled_module(likelihood):
        pytest.skip("kades.temporal.likelihood is not compiled here")
    module = likelihood if compiled else source_module(likelihood)
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(module, module.__name__):
        runner.run(test)
    failed, attempted = runner.summarize(verbose=False)
    assert attempted >= 4 and not failed


def raw_scores(rng: random.Random) -> dict:
    """One point's raw scores: mostly calm, sometimes high, now and then an edge value."""
    edges = [0.0, -0.0, 1.0, 0.3, 0.29999999999999993, 1e-300, 0, 1, math.inf, math.nan]
    scores = {}
    for kind in KIND_ORDER:
        draw = rng.random()
        scores[kind] = (rng.choice(edges) if draw < 0.02 else rng.uniform(0.3, 1.0)
                        if draw < 0.1 else rng.random() * 0.05)
    return scores


@needs_compiled
@pytest.mark.parametrize("seed", range(6))
def test_score_learn_gives_the_same_surprise_and_state_as_the_source(seed):
    rng, source = random.Random(seed), source_module(likelihood)
    # a state written by JSON, integers where floats were (an older writer, a hand-made one)
    state = ({"version": 1, "seen": 28, "kinds": {"pump": [0, 0, 0], "dump": [0.01, 0.0001, 0]},
              "event_rates": {"pump": 0}} if seed % 2 else None)
    params = {"min_points": 30} if seed < 3 else {"history_points": 50, "short_points": 1.0}
    ours = likelihood.AnomalyLikelihood.from_state(json.loads(json.dumps(state)), **params)
    theirs = source.AnomalyLikelihood.from_state(json.loads(json.dumps(state)), **params)
    events = 0
    for index in range(3000):
        raw = raw_scores(rng)
        rare_out = RARE_KINDS if (index // 500) % 2 else ()
        share = 1.0 if rng.random() < 0.8 else rng.choice([0.25, 1 / 3, 0.01])
        found = ours.score_learn(raw, rare_out=rare_out, share=share)
        expected = theirs.score_learn(raw, rare_out=rare_out, share=share)
        assert list(found) == list(expected)
        assert bits(found) == bits(expected), (index, raw)
        assert bits(ours.to_state()) == bits(theirs.to_state()), index
        events += sum(score >= likelihood.EVENT_SURPRISE for score in found.values())
    print(f"\nseed {seed}: 3,000 points, {events} kinds' events, the same to the bit")
    assert events > 0  # the surprise path ran, not only the warm-up's zeros


@needs_compiled
@pytest.mark.parametrize("seed", [3, 11])
def test_the_alert_policy_gives_the_same_verdicts_with_either(seed, monkeypatch):
    """Every verdict and every token's final state of the policy over a simulated market, its
    likelihood compiled and from the source."""
    sim = simulate_market(seed=seed, tokens=4, minutes=900)

    def run() -> tuple[list, dict]:
        monitors, verdicts = {}, []
        for tick in sim.ticks:
            monitor = monitors.setdefault(tick["token"], new_monitor())
            x = {"time": _epoch(tick["time"]), "price": tick["price"],
                 "volume": tick.get("volume"), "liquidity": tick.get("liquidity")}
            verdicts.append(tuple(step(monitor, x)))
        return verdicts, {token: bits(m.to_state()) for token, m in monitors.items()}

    compiled = run()
    monkeypatch.setattr(threshold, "AnomalyLikelihood", source_module(likelihood).AnomalyLikelihood)
    assert type(new_monitor().likelihood).__module__ == "kades.temporal.likelihood_source"
    from_source = run()
    alerts = sum(bool(verdict[2]) for verdict in compiled[0])
    print(f"\nseed {seed}: {len(compiled[0])} ticks, {alerts} alerts, the same either way")
    assert alerts > 0
    assert bits(compiled[0]) == bits(from_source[0])
    assert compiled[1] == from_source[1]


def _epoch(moment) -> float:
    from kades.temporal.function import epoch_s
    return moment if isinstance(moment, float) else epoch_s(moment)


ARGUMENTS = {  # what the source takes, which Cython would refuse under a builtin annotation
    "scores in an OrderedDict": lambda m: m.AnomalyLikelihood().score_learn(
        collections.OrderedDict(pump=0.5)),
    "scores in a read-only mapping": lambda m: m.AnomalyLikelihood().score(
        types.MappingProxyType({"pump": 0.5})),
    "history_points a float": lambda m: m.AnomalyLikelihood(history_points=50.0).learn(
        {"pump": 0.5}),
    "min_points a bool": lambda m: m.AnomalyLikelihood(min_points=True).score_learn({"pump": 0.5}),
    "a str subclass for a kind": lambda m: m.AnomalyLikelihood().evidence(
        type("Kind", (str,), {})("pump")),
    "a state in a read-only mapping": lambda m: m.AnomalyLikelihood.from_state(
        types.MappingProxyType({"version": 1, "seen": 3, "kinds": {}})).seen,
    "an integer share": lambda m: m.AnomalyLikelihood().score_learn({"pump": 0.5}, share=1),
}


@needs_compiled
@pytest.mark.parametrize("case", ARGUMENTS)
def test_the_compiled_module_takes_what_the_source_takes(case):
    call = ARGUMENTS[case]
    assert bits(call(likelihood)) == bits(call(source_module(likelihood)))
