"""The progress meter of a run: a progress bar with the loss, the per-step losses and learning rates, peak memory."""

from __future__ import annotations

import math
import time
from typing import Any


class Meter:
    """Progress bar with the loss, per-step losses, peak memory (CUDA max allocated or sampled RSS)."""

    def __init__(self, show: bool, cuda: bool) -> None:
        self.show, self.cuda = show, cuda
        self.losses: list[float] = []
        self.lrs: list[float] = []
        self.peak_rss = 0
        self.bar: Any = None
        self.t_first_step: float | None = None
        self.sample()

    def sample(self) -> None:
        if not self.cuda:
            import psutil

            self.peak_rss = max(self.peak_rss, psutil.Process().memory_info().rss)

    def callback(self) -> Any:
        from transformers import TrainerCallback

        meter = self

        class ProgressCallback(TrainerCallback):
            def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
                from tqdm.auto import tqdm

                meter.bar = tqdm(total=state.max_steps, desc="fine-tuning", unit="step", disable=not meter.show)

            def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
                if meter.t_first_step is None:
                    meter.t_first_step = time.perf_counter()
                meter.sample()
                if meter.bar is not None:
                    meter.bar.update(1)

            def on_log(self, args, state, control, logs=None, **kw):  # noqa: ANN001
                if logs and "loss" in logs:
                    meter.losses.append(float(logs["loss"]))
                    meter.lrs.append(float(logs.get("learning_rate", math.nan)))
                    if meter.bar is not None:
                        meter.bar.set_postfix(loss=f"{meter.losses[-1]:.3f}")

            def on_train_end(self, args, state, control, **kw):  # noqa: ANN001
                if meter.bar is not None:
                    meter.bar.close()

        return ProgressCallback()

    def peak_mb(self) -> tuple[float, str]:
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated() / 2**20, "cuda_max_allocated"
        self.sample()
        return self.peak_rss / 2**20, "process_rss"


def final_loss(losses: list[float]) -> float:
    """Mean of the last tenth of the logged losses (at least one): less noisy than the last step."""
    if not losses:
        return math.nan
    k = max(1, len(losses) // 10)
    return sum(losses[-k:]) / k
