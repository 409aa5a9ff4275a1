"""The evidence error from independent batches, the exact-likelihood rule of the refinement, and the
draw budget of --target-neff, on analytic toys (seeded, fast).

Toy: target f(x) = Z N(x; 0, 1) with known log Z; draws from a proposal q, weights f / q.
- Student-t proposal (wider tails than the target): bounded weights, the batch-means error covers the
  true log Z at the nominal rate (1σ: ~68 %, t with 19 degrees of freedom: ~67 %; 2σ: ~95 %).
- Too narrow Gaussian proposal (σ = 0.5; weights with Pareto tail index k = 1 − σ² = 0.75, no finite
  variance): the batch error is larger than sqrt((1 − ε)/(n ε)), which understates the spread of
  log Z, and the evidence is flagged unreliable.
"""

import numpy as np
import pytest
from scipy import stats

from dingo_gw.inference.importance.importance_sampling import (
    DrawBudget, PARETO_K_RELIABLE, WeightedSamples, evidence_meta, pareto_k, weight_statistics,
)
from dingo_gw.inference.refine.refine import EXACT_WEIGHT_RESIDUAL, audit_unevaluated, exact_correction, exact_record
from dingo_gw.errors import DataError

LOG_Z = 3.7


def _student_t_weights(rng, n, df=5.0, scale=1.5):
    x = stats.t.rvs(df, scale=scale, size=n, random_state=rng)
    return LOG_Z + stats.norm.logpdf(x) - stats.t.logpdf(x, df, scale=scale)


def _narrow_weights(rng, n, sigma=0.5):
    x = rng.normal(0.0, sigma, n)
    return LOG_Z + stats.norm.logpdf(x) - stats.norm.logpdf(x, 0.0, sigma)


def _repeat(draw, reps=300, n=2000):
    out = {"est": [], "err": [], "gauss": []}
    for i in range(reps):
        s = weight_statistics(draw(np.random.default_rng([11, i]), n))
        out["est"].append(s["log_evidence"])
        out["err"].append(s["log_evidence_err"])
        out["gauss"].append(s["log_evidence_err_gaussian"])
    return {k: np.array(v) for k, v in out.items()}


def test_batch_error_covers_the_true_log_evidence_at_the_stated_rate():
    r = _repeat(_student_t_weights, reps=200)
    miss = np.abs(r["est"] - LOG_Z)
    assert 0.60 < np.mean(miss < r["err"]) < 0.76  # nominal 0.67 (t, 19 dof)
    assert 0.90 < np.mean(miss < 2 * r["err"]) < 0.98  # nominal 0.94
    # light tails: batch means and the Gaussian formula agree on average, and match the actual spread
    assert np.mean(r["err"]) == pytest.approx(np.mean(r["gauss"]), rel=0.1)
    assert np.mean(r["err"]) == pytest.approx(np.std(r["est"]), rel=0.2)


def test_heavy_tailed_weights_get_a_larger_error_and_are_flagged():
    r = _repeat(_narrow_weights)
    spread = np.std(r["est"])
    assert np.mean(r["gauss"]) < 0.7 * spread  # the Gaussian formula understates the error
    assert np.mean(r["err"]) > 1.5 * np.mean(r["gauss"])
    assert np.mean(r["err"] > r["gauss"]) > 0.75
    assert np.mean(r["err"]) > 0.8 * spread
    assert np.mean(np.abs(r["est"] - LOG_Z) < 2 * r["err"]) > 0.75  # closer to nominal than the Gaussian formula
    assert np.mean(np.abs(r["est"] - LOG_Z) < 2 * r["err"]) > np.mean(np.abs(r["est"] - LOG_Z) < 2 * r["gauss"])
    lw = _narrow_weights(np.random.default_rng(5), 20000, sigma=0.4)  # k = 0.84
    k_hat = pareto_k(lw)
    assert k_hat > PARETO_K_RELIABLE
    meta = evidence_meta(weight_statistics(lw), k_hat)
    assert meta["evidence_reliable"] is False and "batch" in meta["log_evidence_err_method"]
    assert evidence_meta(weight_statistics(_student_t_weights(np.random.default_rng(5), 20000)),
                         pareto_k(_student_t_weights(np.random.default_rng(5), 20000)))["evidence_reliable"]


def test_draw_budget_stop_reasons(monkeypatch):
    b = DrawBudget(target_neff=100, batch_size=300)
    assert b.max_samples == 3000  # default: 10 batches
    assert b.stop_reason(50, 300) is None and b.stop_reason(100, 300) == "target_neff"
    assert b.stop_reason(50, 3000) == "max_samples"
    b = DrawBudget(target_neff=100, batch_size=300, max_samples=700)
    assert b.next_batch(600) == 100  # the last batch is cut to the budget
    b = DrawBudget(target_neff=100, batch_size=300, deadline=0.0, max_time=5.0)
    assert b.stop_reason(50, 300) == "max_time"
    rec = b.record("max_time", 1, 300, "network")
    assert rec["stop_reason"] == "max_time" and rec["num_batches"] == 1
    assert rec["target_neff"]["target"] == 100 and rec["target_neff"]["max_time"] == 5.0


class _Exact:
    """Exact log L of the toy: the sample's own ``x`` column (its index into a table) looked up."""

    def __init__(self, table):
        self.table, self.calls = table, 0

    def log_likelihood(self, params, workers=1, progress=False):
        self.calls += 1
        return self.table[params["i"].astype(int)]


def test_exact_weights_until_the_residual_is_below_the_rule():
    rng = np.random.default_rng(3)
    n = 50000
    exact = rng.normal(0.0, 1.5, n)  # a spread of log weights: the top few thousand carry most of the weight
    binned = exact + rng.normal(0.0, 0.05, n)  # relative binning: |Δ log L| ~ 0.05
    ws = WeightedSamples({"i": np.arange(n, dtype=float)}, binned.copy(), np.zeros(n), np.zeros(n))
    like = _Exact(exact)
    out, evaluated, rounds = exact_correction(ws, like, min_chunk=500)
    rec = exact_record(out, binned, evaluated, EXACT_WEIGHT_RESIDUAL, rounds, min_chunk=500)
    assert rec["unevaluated_weight_fraction"] < EXACT_WEIGHT_RESIDUAL
    assert rec["num_exact"] == evaluated.sum() and 500 <= rec["num_exact"] < n
    assert rounds == like.calls >= 1 and rec["num_rounds"] == rounds
    np.testing.assert_array_equal(out.log_likelihood[evaluated], exact[evaluated])
    np.testing.assert_array_equal(out.log_likelihood[~evaluated], binned[~evaluated])
    # the evaluated samples are those of largest weight: none left has a larger binned weight than one evaluated
    assert binned[~evaluated].max() <= binned[evaluated].min() + 0.5
    assert "1e-3" in rec["rule"] or "0.001" in rec["rule"]
    # the un-evaluated weight fraction is computed with the final weights
    w = np.exp(out.log_likelihood - out.log_likelihood.max())
    assert rec["unevaluated_weight_fraction"] == pytest.approx(w[~evaluated].sum() / w.sum())
    # already evaluated samples are not evaluated again; more samples are evaluated only as needed
    again, evaluated2, rounds2 = exact_correction(out, like, evaluated=evaluated, min_chunk=500)
    assert rounds2 == 0 and np.array_equal(evaluated2, evaluated)


def test_audit_finds_weight_that_relative_binning_hid():
    rng = np.random.default_rng(4)
    n = 50000
    exact = rng.normal(0.0, 1.5, n)
    ws0 = WeightedSamples({"i": np.arange(n, dtype=float)}, exact + rng.normal(0.0, 0.05, n), np.zeros(n),
                          np.zeros(n))
    # accurate binning: the audit's estimate of the weight left agrees with the truth, nothing more is evaluated
    like = _Exact(exact)
    out, evaluated, _ = exact_correction(ws0, like, min_chunk=500)
    out, evaluated2, rec = audit_unevaluated(out, evaluated, like, np.random.default_rng(0))
    assert rec["num_audited"] == 1000 and evaluated2.sum() == evaluated.sum() + 1000
    assert rec["action"].startswith("none")
    w = np.exp(exact - exact.max())
    truth = w[~evaluated2].sum() / w.sum()
    assert 0.3 * truth < rec["estimated_unevaluated_weight_fraction"] < 3 * truth < 3 * EXACT_WEIGHT_RESIDUAL
    # binning that under-rates a fifth of the samples by 30 in log L hides ~20 % of the weight from the rule
    hidden = rng.random(n) < 0.2
    binned = exact + rng.normal(0.0, 0.05, n) - 30.0 * hidden
    ws = WeightedSamples({"i": np.arange(n, dtype=float)}, binned, np.zeros(n), np.zeros(n))
    out, evaluated, _ = exact_correction(ws, like, min_chunk=500)
    assert exact_record(out, binned, evaluated, EXACT_WEIGHT_RESIDUAL, 1)["unevaluated_weight_fraction"] < 1e-3
    assert w[~evaluated].sum() / w.sum() > 0.1  # what the rule alone would leave, unseen
    out, evaluated, rec = audit_unevaluated(out, evaluated, like, np.random.default_rng(0))
    assert rec["estimated_unevaluated_weight_fraction"] > 0.05 and rec["action"].startswith("exact")
    assert evaluated.all()
    np.testing.assert_array_equal(out.log_likelihood, exact)


def test_audit_leaves_out_draws_outside_the_prior():
    """Draws outside the prior's support have weight 0 and NaN recovered parameters (as draw_and_weigh leaves
    them): the audit must not hand them to the likelihood, whose waveform generator refuses NaN parameters."""
    rng = np.random.default_rng(5)
    n = 20000
    exact = rng.normal(0.0, 1.5, n)
    outside = rng.random(n) < 0.3
    index = np.where(outside, np.nan, np.arange(n, dtype=float))
    log_prior = np.where(outside, -np.inf, 0.0)

    class _Refusing(_Exact):
        def log_likelihood(self, params, workers=1, progress=False):
            if not np.all(np.isfinite(params["i"])):
                raise DataError("waveform parameter 'i' is not finite")
            return super().log_likelihood(params, workers, progress)

    like = _Refusing(exact)
    ws = WeightedSamples({"i": index}, np.where(outside, np.nan, exact), log_prior, np.zeros(n))
    out, evaluated, _ = exact_correction(ws, like, min_chunk=500)
    assert not evaluated[outside].any()
    left = int((~evaluated & ~outside).sum())
    out, evaluated, rec = audit_unevaluated(out, evaluated, like, np.random.default_rng(0), size=left // 2, limit=0.0)
    assert rec["num_audited"] == left // 2 > 0 and rec["action"].startswith("exact")  # limit 0: all the rest evaluated
    assert evaluated[~outside].all() and not evaluated[outside].any()


def test_target_neff_settings_are_checked():
    from pydantic import ValidationError

    from dingo_gw.errors import ConfigError
    from dingo_gw.inference.analyze import AnalysisSettings
    from dingo_gw.serve.config import AnalysisConfig

    assert AnalysisConfig(target_neff=2000, max_time=60).target_neff == 2000
    with pytest.raises(ValidationError, match="target_neff"):
        AnalysisConfig(max_samples=1000)
    AnalysisSettings(event="GW150914", target_neff=100, max_samples=1000).check()
    with pytest.raises(ConfigError, match="--target-neff"):
        AnalysisSettings(event="GW150914", max_time=10.0).check()
    with pytest.raises(ConfigError, match="--target-neff must be > 0"):
        AnalysisSettings(event="GW150914", target_neff=0).check()
