"""Persona dataset: user requests, generation (teacher model or offline), validation and analysis.

Modules: :mod:`.requests` (the committed user requests and their split), :mod:`.offline` (the
deterministic generator), :mod:`.generate` (both generators, the OpenAI chat format, file output),
:mod:`.validate` (format, persona, length, duplicate and leakage checks), :mod:`.counting` (token
counts), :mod:`.stats` (statistics, coverage, cost) and :mod:`.exercise` (exercise 03).
"""

from .counting import TokenCounter, token_counter
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
from .validate import KINDS, Problem, ValidationReport, validate_examples, validate_file, validate_text

__all__ = [
    "CATEGORIES", "KINDS", "DatasetPaths", "Problem", "Request", "ResponseCache", "Teacher", "TokenCounter", "Turn",
    "ValidationReport", "build_default_datasets", "build_requests", "default_dataset_paths", "generate",
    "load_requests", "lora_run_estimate", "marker_coverage", "offline_conversation", "offline_reply",
    "openai_default_epochs", "openai_training_cost", "plot_marker_coverage", "plot_token_histogram", "read_examples",
    "split_of", "system_message", "token_counter", "token_stats", "validate_examples", "validate_file",
    "validate_text", "write_examples",
]
