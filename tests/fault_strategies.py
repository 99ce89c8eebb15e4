"""Mapping strategies that misbehave on purpose, registered through the ordinary plugin path.

Only worker subprocesses import this module (``worker_processes.BOOT``, or the ``sitecustomize`` that
test_slurm.py puts on the Slurm jobs' ``PYTHONPATH``), before running the CLI; never import it from a
test, or the strategies enter the pytest process's registry.
"""

from __future__ import annotations

import os
import time

import torch

from tuneflow.transfer.base import MappingStrategy, register_strategy
from tuneflow.transfer.direct import Direct


@register_strategy
class SlowDirect(MappingStrategy):
    """``direct`` after a pause: a trial that stays RUNNING long enough to be killed mid-way."""

    name = "slow_direct"
    summary = "test only: direct after a pause"
    parameters = {"sleep_seconds": 2.0}

    def run(self, ctx):
        model = ctx.prepare(ctx.new_model(ctx.target))
        # $TUNEFLOW_TEST_SLEEP_SECONDS replaces the parameter in this process only: one worker's trial
        # can stay RUNNING for long while its retry on another worker is quick.
        seconds = os.environ.get("TUNEFLOW_TEST_SLEEP_SECONDS", ctx.params.mapping_params["sleep_seconds"])
        deadline = time.monotonic() + float(seconds)
        while time.monotonic() < deadline:
            time.sleep(0.05)
        ctx.fit(model, ctx.target, epochs=ctx.params.epochs, lr=ctx.params.learning_rate, report=True)
        return model


@register_strategy
class OomAbove(MappingStrategy):
    """Behaves as if the GPU had room for batches of at most ``oom_above_batch`` examples."""

    name = "oom_above"
    summary = "test only: CUDA out of memory above a batch size"
    parameters = {"oom_above_batch": 16}

    def run(self, ctx):
        if ctx.params.batch_size > ctx.params.mapping_params["oom_above_batch"]:
            model = ctx.prepare(ctx.new_model(ctx.target))  # memory is held when it happens
            activations = torch.zeros(ctx.params.batch_size, 1024)
            raise torch.cuda.OutOfMemoryError(
                f"CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 8 GiB "
                f"({model.num_labels} labels, {activations.numel()} values)"
            )
        return Direct().run(ctx)
