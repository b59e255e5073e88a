"""How fast each profile's machine is, as named assumptions with their sources: the rates the request budget
(:mod:`personalab.budget`) turns completions, tokens and training steps into minutes with.

The CPU rates were measured on this project's 2-core machine (``benchmarks/RESULTS.md``); the T4 rates are
assumptions until a T4 measures them, and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Rates:
    """How fast one profile's machine is, as assumptions with their sources (see the module docstring).

    ``decode_single``/``decode_batched``: reply tokens per second of the local server, one request at a time and
    with ``batch`` requests at once (continuous batching); in between, the rate is interpolated linearly.
    ``prefill``: prompt tokens per second. ``inprocess``: reply tokens per second of lesson 04's batched
    in-process generation, its quality scoring included. ``step_s``: seconds per training step, ``train_setup_s``
    the trainer's set-up and merge. ``lesson_s``: fixed start-up per lesson (kernel, imports, model load).
    ``install_s``: one-time install and download before lesson 00, counted in the total."""

    profile: str
    hardware: str
    decode_single: float
    decode_batched: float
    batch: int
    prefill: float
    inprocess: float
    step_s: float
    train_setup_s: float
    lesson_s: float
    install_s: float
    goal_s: float
    goal: str
    measured: dict[str, str] = field(default_factory=dict)
    assumed: dict[str, str] = field(default_factory=dict)

    def decode(self, concurrency: int) -> float:
        """Reply tokens per second with ``concurrency`` requests in flight (all servers of the lesson together:
        they share the same cores or GPU)."""
        c = max(1, min(concurrency, self.batch))
        if self.batch == 1:
            return self.decode_single
        return self.decode_single + (self.decode_batched - self.decode_single) * (c - 1) / (self.batch - 1)

    def training_seconds(self, steps: int) -> float:
        """Fine-tuning ``steps`` steps: set-up and merge, then ``steps`` x seconds per step."""
        return self.train_setup_s + steps * self.step_s


_CPU_SOURCE = "benchmarks/RESULTS.md, 2-core x86_64 CPU, SmolLM2-135M-Instruct"
CPU_RATES = Rates(
    profile="cpu", hardware="2 CPU cores (x86_64)",
    decode_single=30.0, decode_batched=97.0, batch=8, prefill=400.0, inprocess=85.0,
    step_s=4.5, train_setup_s=45.0, lesson_s=6.0, install_s=0.0,
    goal_s=12 * 60, goal="the cold course (run-course, new PERSONALAB_HOME, install not counted) in 12 minutes",
    measured={
        "decode_single": "30 tokens/s, one request at a time, SmolLM2-135M-Instruct on 2 quiet cores (measured "
                         "2026-12-04 by the session that planned this budget, not yet a row of RESULTS.md, whose "
                         "bench_server_batching ran beside a process using a whole core: 5.5 tokens/s)",
        "decode_batched": "97 tokens/s, 8 at a time with --continuous-batching, on the same 2 quiet cores (RESULTS.md: "
                          "36.6 beside the busy process)",
        "inprocess": "85 tokens/s: lesson 04's two base-model evaluations, 2 x 32 replies x 48 tokens in 36.0 s "
                     "(cold run-course 2026-12-05 12:00, batches of 32; 58 tokens/s on 2026-12-04 in batches of 16)",
        "step_s": "4.5 s/step: lesson 04's 24 steps in 107.6 s (cold run-course 2026-12-05 12:00; 5.5 on 2026-12-04)",
        "lesson_s": "6 s: lesson 00 took 6.1 s in the cold run-course of 2026-12-05 12:00 (kernel, imports, server "
                    "start; 9.6 s on 2026-12-04)",
    },
    assumed={
        "prefill": "400 prompt tokens/s: about 3x the training throughput (136 tokens/s forward + backward); "
                   "not measured on its own",
        "train_setup_s": "45 s: Unsloth set-up (28 s measured) plus merging and saving",
    },
)
_T4 = "assumption until a T4 measures it"
T4_RATES = Rates(
    profile="colab-gpu", hardware="free Colab T4 (16 GB, float16)",
    decode_single=25.0, decode_batched=160.0, batch=8, prefill=4000.0, inprocess=250.0,
    step_s=1.5, train_setup_s=90.0, lesson_s=15.0, install_s=5 * 60,
    goal_s=30 * 60, goal="the express run on a free T4 in 30 minutes, install and download included",
    assumed={
        "decode_single": f"25 tokens/s for Qwen2.5-0.5B in float16 under transformers serve ({_T4})",
        "decode_batched": f"160 tokens/s with 8 requests batched ({_T4})",
        "prefill": f"4,000 prompt tokens/s ({_T4})",
        "inprocess": f"250 tokens/s for batched generate() of 16 replies ({_T4})",
        "step_s": f"1.5 s/step: Unsloth QLoRA, 8 conversations of up to 1,024 tokens ({_T4})",
        "train_setup_s": f"90 s: loading the 4-bit model, Unsloth's patching, merging and saving ({_T4})",
        "lesson_s": f"15 s per lesson: kernel, imports, loading the model onto the GPU ({_T4})",
        "install_s": "5 minutes: pip install into Colab's runtime and the 1 GB model download (the issue's figure)",
    },
)
#: Rates per profile; ``gpu`` (any CUDA machine) is budgeted as the T4, the smallest GPU the course supports.
RATES: dict[str, Rates] = {
    "cpu": CPU_RATES,
    "colab-gpu": T4_RATES,
    "gpu": replace(T4_RATES, profile="gpu", hardware="a CUDA GPU, budgeted as a free Colab T4"),
}


def fmt_minutes(seconds: float) -> str:
    """'under a minute' or 'about N min'."""
    return "under a minute" if seconds < 60 else f"about {round(seconds / 60):.0f} min"
