"""What a fine-tuning run leaves behind: :class:`TrainResult`, saved as ``metrics.json`` next to the adapter."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import atomic_write_json

METRICS_FILE = "metrics.json"
ADAPTER_DIR = "adapter"
MERGED_DIR = "merged"


@dataclass
class TrainResult:
    """One finished run: where the adapter and the merged model are, what it cost, how the loss went.

    Every field is plain data (strings, numbers, lists), so a result can be saved, exported to a grader or
    compared across machines. ``metrics`` holds wall time, setup time, time per step, tokens per second,
    peak memory (``memory_kind`` says CUDA max allocated or process RSS), trainable parameters and losses.
    """

    backend: str
    base_model: str
    output_dir: str
    adapter_dir: str
    merged_dir: str | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    losses: list[float] = field(default_factory=list)
    eval: dict[str, Any] = field(default_factory=dict)

    # ---- numbers
    @property
    def steps(self) -> int:
        return int(self.metrics.get("steps", len(self.losses)))

    @property
    def first_loss(self) -> float:
        return self.losses[0] if self.losses else math.nan

    @property
    def final_loss(self) -> float:
        return float(self.metrics.get("final_loss", math.nan))

    def summary(self) -> dict[str, Any]:
        """The headline numbers (what lesson 04 saves for lessons 05 and 06)."""
        keys = ("wall_s", "setup_s", "train_s", "steps", "time_per_step_s", "tokens_seen", "tokens_per_second",
                "peak_memory_mb", "memory_kind", "trainable_params", "total_params", "first_loss", "final_loss",
                "device")
        out = {k: self.metrics.get(k) for k in keys}
        out.update(backend=self.backend, base_model=self.base_model, adapter_dir=self.adapter_dir,
                   merged_dir=self.merged_dir)
        out.update({f"eval_{k}": v for k, v in self.eval.items()})
        return out

    def record(self, before: dict[str, Any], prompted: dict[str, Any], after: dict[str, Any], *,
               train_examples: int, config: Any) -> dict[str, Any]:
        """What lesson 04 (and the express notebook) saves as ``04/training``: :meth:`summary` plus the marker,
        fluency and task-fact rates of the three :func:`personalab.finetune.persona_eval` readings (the base without
        and with the prompt, the fine-tuned model without it), and the run's size and settings."""
        return {
            **self.summary(),
            "marker_rate_before": before["rate"],
            "marker_rate_prompted": prompted["rate"],
            "marker_rate_after": after["rate"],
            "fluent_rate_before": before["fluent_rate"],
            "fluent_rate_after": after["fluent_rate"],
            "task_fact_rate_before": before["task_fact_rate"],
            "task_fact_rate_after": after["task_fact_rate"],
            "heldout_requests": before["n"],
            "train_examples": train_examples,
            "config": config.to_dict(),
        }

    def __str__(self) -> str:
        m = self.metrics
        return (f"{self.backend} on {m.get('device')}: {self.steps} steps in {m.get('train_s', 0):.1f} s "
                f"({m.get('time_per_step_s', 0):.3f} s/step, {m.get('tokens_per_second', 0):.0f} tokens/s), "
                f"loss {self.first_loss:.3f} → {self.final_loss:.3f}, peak memory {m.get('peak_memory_mb', 0):.0f} MB "
                f"({m.get('memory_kind')}), {m.get('trainable_params', 0):,} trainable parameters")

    # ---- files
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self) -> Path:
        """Write ``metrics.json`` into the output folder, atomically."""
        return atomic_write_json(Path(self.output_dir) / METRICS_FILE, self.to_dict())

    @classmethod
    def from_dir(cls, output_dir: str | Path) -> TrainResult:
        path = Path(output_dir) / METRICS_FILE
        if not path.exists():
            raise InputError("no finished fine-tuning run here (metrics.json missing)", path=path,
                             fix="run lesson 04 (or personalab.finetune.train) first")
        data = json.loads(path.read_text(encoding="utf-8"))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    # ---- use the model
    def load(self, *, merged: bool = True) -> tuple[Any, Any]:
        """(model, tokenizer) for inference: the merged checkpoint, or the base model plus the adapter."""
        from .infer import load_model

        if merged and self.merged_dir:
            return load_model(self.merged_dir)
        return load_model(self.base_model, adapter=self.adapter_dir)

    def server(self, **kwargs: Any) -> Any:
        """A :class:`personalab.server.LocalServer` for the merged model (use it as a context manager)."""
        from ..server import LocalServer

        if not self.merged_dir:
            raise InputError("this run saved no merged model", field="merge",
                             fix="train with FinetuneConfig(merge=True), or call personalab.finetune.merge(result)")
        return LocalServer(self.merged_dir, **kwargs)

    def plot_loss(self, ax: Any = None, *, label: str | None = None, smooth: int = 5) -> Any:
        """Training loss per step (thin) and its moving average over ``smooth`` steps (thick)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3))
        steps = list(range(1, len(self.losses) + 1))
        line = ax.plot(steps, self.losses, alpha=0.35, lw=1)[0]
        if len(self.losses) >= smooth > 1:
            avg = [sum(self.losses[i - smooth + 1 : i + 1]) / smooth for i in range(smooth - 1, len(self.losses))]
            ax.plot(steps[smooth - 1 :], avg, color=line.get_color(), lw=2,
                    label=label or f"{self.backend} ({smooth}-step average)")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("training loss (assistant tokens)")
        ax.grid(alpha=0.3)
        ax.legend()
        return ax


def load_result(output_dir: str | Path | None = None) -> TrainResult:
    """The run saved in ``output_dir`` (default: where lesson 04 trains)."""
    from .config import default_output_dir

    return TrainResult.from_dir(output_dir or default_output_dir())


def finetuned_model_dir(output_dir: str | Path | None = None) -> Path:
    """The merged checkpoint of lesson 04's run: what lesson 05 serves through the local server."""
    result = load_result(output_dir)
    if not result.merged_dir or not (Path(result.merged_dir) / "config.json").exists():
        raise InputError("the fine-tuned run has no merged checkpoint", path=result.output_dir,
                         fix="run lesson 04 again (it saves one), or call personalab.finetune.merge(result)")
    return Path(result.merged_dir)


def serve_finetuned(output_dir: str | Path | None = None, **kwargs: Any) -> Any:
    """A LocalServer on lesson 04's merged model: ``with serve_finetuned() as server: ...``."""
    from ..server import LocalServer

    return LocalServer(finetuned_model_dir(output_dir), **kwargs)
