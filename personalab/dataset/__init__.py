"""Persona dataset: user requests, generation (teacher model or offline), validation and analysis.

Modules: :mod:`.requests` (the committed user requests and their split), :mod:`.offline` (the
deterministic generator), :mod:`.generate` (both generators, the OpenAI chat format, file output),
:mod:`.validate` (format, persona, length, duplicate and leakage checks), :mod:`.counting` (token
counts), :mod:`.stats` (statistics, coverage, cost) and :mod:`.exercise` (exercise 03).
"""

from .counting import TokenCounter, base_counter, token_counter
from .generation import (
    DatasetPaths,
    ResponseCache,
    Teacher,
    build_default_datasets,
    default_dataset_paths,
    generate,
    read_examples,
    system_message,
    write_examples,
)
from .offline import offline_conversation, offline_reply
from .requests import CATEGORIES, Request, Turn, build_requests, load_requests, split_of
from .stats import (
    lora_run_estimate,
    marker_coverage,
    openai_default_epochs,
    openai_training_cost,
    plot_marker_coverage,
    plot_token_histogram,
    token_stats,
)
from .validate import (
    KINDS,
    Problem,
    ValidationReport,
    drop_problems,
    validate_examples,
    validate_file,
    validate_text,
)

__all__ = [
    "base_counter",
    "build_default_datasets",
    "build_requests",
    "CATEGORIES",
    "DatasetPaths",
    "default_dataset_paths",
    "drop_problems",
    "generate",
    "KINDS",
    "load_requests",
    "lora_run_estimate",
    "marker_coverage",
    "offline_conversation",
    "offline_reply",
    "openai_default_epochs",
    "openai_training_cost",
    "plot_marker_coverage",
    "plot_token_histogram",
    "Problem",
    "read_examples",
    "Request",
    "ResponseCache",
    "split_of",
    "system_message",
    "Teacher",
    "token_counter",
    "token_stats",
    "TokenCounter",
    "Turn",
    "validate_examples",
    "validate_file",
    "validate_text",
    "ValidationReport",
    "write_examples",
]
