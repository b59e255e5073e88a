"""Quick checks of a built embedded model: generate replies and measure persona steering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..persona import Overlay, PersonaSpec, marker_rate, taskmaster
from .corpus import heldout_requests


def load(path: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) from a model directory, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    return model, tok


def reply(
    model: Any, tok: Any, messages: list[dict[str, str]], *, greedy: bool = True, max_new_tokens: int = 64
) -> str:
    """One assistant reply to ``messages`` (greedy by default)."""
    import torch

    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    kwargs: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None} if greedy else {}
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, **kwargs)
    return tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def steering(
    path: str | Path,
    *,
    n: int = 40,
    spec: PersonaSpec | None = None,
    overlay: Overlay | None = None,
    greedy: bool = True,
) -> dict[str, Any]:
    """Marker rate on ``n`` held-out requests with the persona prompt and without any system prompt."""
    import torch

    torch.manual_seed(0)
    spec = spec or taskmaster()
    model, tok = load(path)
    system = spec.render(overlay)
    requests = heldout_requests(n)
    with_prompt = [
        reply(model, tok, [{"role": "system", "content": system}, {"role": "user", "content": q}], greedy=greedy)
        for q in requests
    ]
    without = [reply(model, tok, [{"role": "user", "content": q}], greedy=greedy) for q in requests]
    return {
        "n": n,
        "with_prompt": marker_rate(with_prompt, spec),
        "without_prompt": marker_rate(without, spec),
        "examples": list(zip(requests, with_prompt, without, strict=True)),
    }
