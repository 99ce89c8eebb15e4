"""The one training loop: gradient clipping, gradient accumulation, the two-task path, compile.

Gradients are read where they matter, at the optimizer step: a global step pre-hook records, for every
``optimizer.step()`` the process makes, the learning rate and the gradients the step is about to apply
(after clipping). AdamW's update hardly depends on the gradient's scale, so the parameters alone
could not show that clipping or the 1/K of accumulation happened; the gradients do.
"""

from __future__ import annotations

import numpy as np
import peft  # noqa: F401  fit() imports it on first use (is_head_parameter); pay that once, at collection
import pytest
import torch
import torch.nn.functional as F
from conftest import SOURCE_WORDS, TARGET_WORDS, _rows
from torch.optim.optimizer import register_optimizer_step_pre_hook

from tuneflow.config.errors import ConfigError
from tuneflow.config.trial_params import TrialParams
from tuneflow.data.batching import EncodedSplit, encode
from tuneflow.data.tasks import TextSplit
from tuneflow.models.loading import load_tokenizer, new_classifier
from tuneflow.training.loop import FitStats, NonFiniteLoss, TwoTaskStep, fit
from tuneflow.training.runtime import Runtime

CPU = Runtime(torch.device("cpu"), None)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(str(tiny_model_dir))


def split(tokenizer, words: dict, n: int, seed: int) -> EncodedSplit:
    rows = _rows(words, n, seed)
    return encode(tokenizer, TextSplit([r["text"] for r in rows], None, np.array([r["label"] for r in rows])), 16)


def model(tiny_model_dir, labels: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    return new_classifier(str(tiny_model_dir), labels)  # the conftest BERT has no dropout: runs are deterministic


@pytest.fixture
def steps():
    """Every optimizer step taken while the test runs: the group-0 learning rate and the gradients it applies."""
    seen: list[dict] = []

    def record(optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"]]
        seen.append({
            "lr": optimizer.param_groups[0]["lr"],
            "grads": [None if p.grad is None else p.grad.detach().clone() for p in params],
            "params": params,  # the tensors themselves, to tell which weight a gradient belongs to
        })

    handle = register_optimizer_step_pre_hook(record)
    yield seen
    handle.remove()


def grad_norm(step: dict) -> float:
    grads = [g for g in step["grads"] if g is not None]
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))


def source_head(hidden: int = 32, labels: int = 2):
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(hidden, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, labels))


# --- clipping ----------------------------------------------------------------------------------------


def test_clipping_bounds_the_gradient_every_step_applies(tiny_model_dir, tokenizer, steps):
    data = split(tokenizer, TARGET_WORDS, 48, 1)
    kwargs = dict(runtime=CPU, pad_id=tokenizer.pad_token_id, epochs=1, lr=1e-3, batch_size=16, seed=0)
    fit(model(tiny_model_dir), data, max_grad_norm=0, **kwargs)
    free = [grad_norm(s) for s in steps]
    steps.clear()
    fit(model(tiny_model_dir), data, max_grad_norm=1e-3, **kwargs)
    clipped = [grad_norm(s) for s in steps]
    assert len(free) == len(clipped) == 3
    assert min(free) > 0.05  # what the steps would have applied ...
    assert max(clipped) == pytest.approx(1e-3, rel=1e-3)  # ... and what they did: the norm, rescaled to the bound


def test_clipping_covers_the_extra_modules(tiny_model_dir, tokenizer, steps):
    target, source = split(tokenizer, TARGET_WORDS, 32, 1), split(tokenizer, SOURCE_WORDS, 20, 3)
    head = source_head()

    def extra_loss(step: TwoTaskStep):
        return 10.0 * F.cross_entropy(head(step.source_features), step.source_labels)  # large head gradients

    fit(model(tiny_model_dir), target, source=source, extra_loss=extra_loss, extra_modules=[head], runtime=CPU,
        pad_id=tokenizer.pad_token_id, epochs=1, lr=1e-3, batch_size=16, seed=0, max_grad_norm=1e-3)
    head_params = {id(p) for p in head.parameters()}
    assert len(steps) == 2
    for step in steps:
        assert grad_norm(step) == pytest.approx(1e-3, rel=1e-3)  # the norm over model *and* head is bounded
        assert len(step["grads"]) > len(head_params)
        assert all(g is not None for g in step["grads"][-len(head_params):])  # the head's groups come last, trained


def test_clipping_and_accumulation_are_validated_trial_parameters():
    assert TrialParams().max_grad_norm == 1.0 and TrialParams().gradient_accumulation_steps == 1
    assert TrialParams(max_grad_norm=0).max_grad_norm == 0 and TrialParams(max_grad_norm=None).max_grad_norm is None
    with pytest.raises(ConfigError, match="max_grad_norm"):
        TrialParams(max_grad_norm=-0.5)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
            TrialParams(gradient_accumulation_steps=bad)


# --- accumulation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_grad_norm", [0, 0.05])
def test_two_micro_batches_of_8_step_like_one_batch_of_16(tiny_model_dir, tokenizer, steps, max_grad_norm):
    # 16 rows, one epoch: K=1 at batch 16 is one batch, K=2 at batch 8 two micro-batches of the same rows.
    # Accumulating without the 1/K would double the gradient (seen unclipped); stepping per micro-batch
    # would step twice; clipping per micro-batch would clip another vector (0.05 is below the full norm).
    data = split(tokenizer, TARGET_WORDS, 16, 4)
    kwargs = dict(runtime=CPU, pad_id=tokenizer.pad_token_id, epochs=1, lr=1e-3, seed=0, max_grad_norm=max_grad_norm)
    whole, accumulated = model(tiny_model_dir), model(tiny_model_dir)
    fit(whole, data, batch_size=16, gradient_accumulation_steps=1, **kwargs)
    fit(accumulated, data, batch_size=8, gradient_accumulation_steps=2, **kwargs)
    assert len(steps) == 2  # one optimizer step each
    one, two = steps
    assert (grad_norm(one) > 0.1) if not max_grad_norm else (grad_norm(one) == pytest.approx(0.05, rel=1e-3))
    for a, b in zip(one["grads"], two["grads"]):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-4)
    # AdamW's first step moves each weight by about lr (1e-3) whatever the gradient's size, so where the
    # gradient is 0 in exact arithmetic (attention key biases: softmax ignores a per-row shift) float noise
    # picks the direction; those gradients were compared above. Every other weight agrees to 1% of a step.
    noise_only = {id(p) for p, g in zip(one["params"], one["grads"]) if g is not None and float(g.abs().max()) < 1e-6}
    compared = 0
    for (name, a), (_, b) in zip(whole.named_parameters(), accumulated.named_parameters()):
        if id(a) not in noise_only:
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0, msg=name)
            compared += 1
    assert compared > len(noise_only) and all("key.bias" in n for n, p in whole.named_parameters() if id(p) in noise_only)


def test_a_short_last_group_averages_over_its_own_micro_batches(tiny_model_dir, tokenizer, steps):
    # 5 rows at batch 4: micro-batches of 4 and 1. With K=3 they are one short group, which must step
    # with the same gradient as K=2 (where they are a full group): the mean over its 2 micro-batches.
    data = split(tokenizer, TARGET_WORDS, 5, 6)
    kwargs = dict(runtime=CPU, pad_id=tokenizer.pad_token_id, epochs=1, lr=1e-3, batch_size=4, seed=0, max_grad_norm=0)
    fit(model(tiny_model_dir), data, gradient_accumulation_steps=2, **kwargs)
    fit(model(tiny_model_dir), data, gradient_accumulation_steps=3, **kwargs)
    assert len(steps) == 2
    for a, b in zip(steps[0]["grads"], steps[1]["grads"]):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-4)


def test_the_schedule_and_evaluations_count_optimizer_steps(tiny_model_dir, tokenizer, steps):
    # 11 rows at batch 4 = 3 micro-batches an epoch; K=2 -> 2 optimizer steps an epoch, the second of
    # them after one micro-batch (a short last group still steps). 2 epochs -> 4 steps in the schedule.
    data = split(tokenizer, TARGET_WORDS, 11, 5)
    evaluations = []
    stats = fit(model(tiny_model_dir), data, runtime=CPU, pad_id=tokenizer.pad_token_id, epochs=2, lr=1e-3, batch_size=4,
                seed=0, gradient_accumulation_steps=2, on_evaluate=evaluations.append, evaluate_every_steps=1)
    assert [s["lr"] for s in steps] == pytest.approx([1e-3, 0.75e-3, 0.5e-3, 0.25e-3])  # linear decay over 4 steps
    assert evaluations == [0, 1, 2, 3]  # after step 1 (mid-epoch) and at each epoch's end (step 2, step 4)
    assert stats.examples_seen == 22 and len(stats.epoch_losses) == 2


@pytest.mark.parametrize("epochs, count, at", [
    (1, 4, [0.25, 0.5, 0.75, 1.0]),  # one epoch of 8 steps: evaluated at a quarter of it, and every quarter on
    (2, 4, [0.25, 0.5, 0.75, 1.0]),  # the same shares whatever the epoch count
    (1, 3, [3 / 8, 6 / 8, 1.0]),  # uneven: each point rounds up to a whole optimizer step
    (1, 20, [k / 8 for k in range(1, 9)]),  # more evaluations than steps: once after each step
])
def test_evaluations_spread_over_the_schedule_whatever_its_epochs(tiny_model_dir, tokenizer, epochs, count, at):
    data = split(tokenizer, TARGET_WORDS, 32 // epochs, 5)  # 8 optimizer steps in the whole schedule, at batch 4
    stats_at: list[float] = []
    stats = None

    def on_evaluate(index: int) -> None:
        stats_at.append(stats.progress)

    stats = FitStats()
    fit(model(tiny_model_dir), data, runtime=CPU, pad_id=tokenizer.pad_token_id, epochs=epochs, lr=1e-3, batch_size=4,
        seed=0, on_evaluate=on_evaluate, evaluations_per_schedule=count, stats=stats)
    assert stats_at == pytest.approx(at)
    assert len(stats.epoch_losses) == epochs and stats.examples_seen == 32


def test_a_one_epoch_fit_stops_at_its_first_quarter_when_the_evaluation_says_so(tiny_model_dir, tokenizer, steps):
    # What a pruner does to a one-epoch trial: the first of 4 evaluations raises, and no later step runs.
    data = split(tokenizer, TARGET_WORDS, 32, 5)

    class Pruned(Exception):
        pass

    def on_evaluate(index: int) -> None:
        raise Pruned

    stats = FitStats()
    with pytest.raises(Pruned):
        fit(model(tiny_model_dir), data, runtime=CPU, pad_id=tokenizer.pad_token_id, epochs=1, lr=1e-3, batch_size=4,
            seed=0, on_evaluate=on_evaluate, evaluations_per_schedule=4, stats=stats)
    assert len(steps) == 2 and stats.progress == 0.25 and stats.examples_seen == 8  # 2 of the epoch's 8 steps


# --- the two-task path -------------------------------------------------------------------------------


def test_two_task_fit_trains_the_extra_modules_and_counts_source_rows(tiny_model_dir, tokenizer, steps):
    target, source = split(tokenizer, TARGET_WORDS, 20, 1), split(tokenizer, SOURCE_WORDS, 12, 3)
    head = source_head()
    before = [p.detach().clone() for p in head.parameters()]
    seen: list[TwoTaskStep] = []

    def extra_loss(step: TwoTaskStep):
        seen.append(step)
        return F.cross_entropy(head(step.source_features), step.source_labels)

    stats = fit(model(tiny_model_dir), target, source=source, extra_loss=extra_loss, extra_modules=[head], runtime=CPU,
                pad_id=tokenizer.pad_token_id, epochs=2, lr=1e-3, head_lr=1e-2, batch_size=8, seed=0,
                gradient_accumulation_steps=2)
    # 3 target micro-batches an epoch, each with a source batch (the 12 source rows cycle: 8 + 4 + 8 ...).
    assert len(seen) == 6 and len(steps) == 4
    assert stats.examples_seen == 2 * 20 + sum(len(s.source_labels) for s in seen)
    assert [s.progress for s in seen] == [0.0, 0.0, 0.25, 0.5, 0.5, 0.75]  # optimizer steps done / 4
    assert all(s.target_features.shape[1] == s.source_features.shape[1] == 32 for s in seen)
    assert steps[0]["lr"] == 1e-3 and all(not torch.equal(a, b) for a, b in zip(before, head.parameters()))
    assert not head.training  # fit leaves every module it trained in eval mode


def test_two_task_fit_needs_both_source_and_extra_loss(tiny_model_dir, tokenizer):
    data = split(tokenizer, TARGET_WORDS, 8, 1)
    with pytest.raises(ValueError, match="source split and an extra loss"):
        fit(model(tiny_model_dir), data, source=data, runtime=CPU, pad_id=0, epochs=1, lr=1e-3, batch_size=4)


def test_a_nan_extra_loss_raises_non_finite_loss(tiny_model_dir, tokenizer):
    target, source = split(tokenizer, TARGET_WORDS, 8, 1), split(tokenizer, SOURCE_WORDS, 8, 3)
    with pytest.raises(NonFiniteLoss, match="nan"):
        fit(model(tiny_model_dir), target, source=source, extra_loss=lambda step: step.source_features.sum() * float("nan"),
            runtime=CPU, pad_id=tokenizer.pad_token_id, epochs=1, lr=1e-3, batch_size=4)


@pytest.mark.slow  # inductor compiles C++ on the CPU: about a minute
def test_compiled_two_task_fit_matches_eager(tiny_model_dir, tokenizer):
    from torch._dynamo.utils import counters

    from tuneflow.transfer.losses import dann_lambda, grad_reverse

    target, source = split(tokenizer, TARGET_WORDS, 24, 1), split(tokenizer, SOURCE_WORDS, 16, 3)
    results = []
    counters.clear()
    for runtime in (CPU, Runtime(torch.device("cpu"), None, compile=True)):
        net, head, domain = model(tiny_model_dir), source_head(), source_head(labels=1)

        def extra_loss(step: TwoTaskStep, head=head, domain=domain):
            features = torch.cat([step.target_features, step.source_features])
            domains = torch.cat([torch.zeros(len(step.target_features)), torch.ones(len(step.source_features))])
            reversed_features = grad_reverse(features, dann_lambda(step.progress, 0.5))
            return F.cross_entropy(head(step.source_features), step.source_labels) + F.binary_cross_entropy_with_logits(
                domain(reversed_features).squeeze(-1), domains
            )

        stats = fit(net, target, source=source, extra_loss=extra_loss, extra_modules=[head, domain], runtime=runtime,
                    pad_id=tokenizer.pad_token_id, epochs=2, lr=1e-3, batch_size=8, seed=0)
        results.append((stats, net, head))
    (eager, eager_net, eager_head), (compiled, compiled_net, compiled_head) = results
    assert counters["frames"]["ok"] > 0  # the two-task passes did go through torch.compile
    np.testing.assert_allclose(compiled.epoch_losses, eager.epoch_losses, rtol=1e-4)
    # The compiled view shares the parameters: the trial's own model (and heads) trained, not a copy.
    # Attention key biases are left out: softmax ignores them, so their gradient is float noise, which
    # AdamW turns into steps of ~lr in either direction.
    for (name, x), (_, y) in zip(eager_net.named_parameters(), compiled_net.named_parameters()):
        if not name.endswith("key.bias"):
            torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4, msg=name)
    for x, y in zip(eager_head.parameters(), compiled_head.parameters()):
        torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "spec, error",
    [
        ({"max_grad_norm": {"type": "float", "low": 0.0, "high": 5.0},
          "gradient_accumulation_steps": {"type": "categorical", "choices": [1, 2, 4]}}, None),
        ({"max_grad_norm": {"type": "categorical", "choices": [None, 0, 0.5]}}, None),  # null and 0: no clipping
        ({"max_grad_norm": {"type": "float", "low": -1.0, "high": 1.0}}, "parameters.max_grad_norm"),
        ({"gradient_accumulation_steps": {"type": "int", "low": 0, "high": 4}}, "parameters.gradient_accumulation_steps"),
        ({"gradient_accumulation_steps": {"type": "float", "low": 1.0, "high": 4.0}}, "parameters.gradient_accumulation_steps"),
    ],
)
def test_search_spaces_sample_clipping_and_accumulation(make_study, run_cli, spec, error):
    code, _, err = run_cli("validate", make_study(search_space={"parameters": {"epochs": {"type": "fixed", "value": 1}, **spec}}))
    if error is None:
        assert code == 0, err
    else:
        assert code == 2 and error in err and len(err.strip().splitlines()) == 1, err
