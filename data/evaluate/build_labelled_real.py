"""Generate the real-model replies of data/evaluate/labelled.jsonl (rows ``r001``...; see LABELLING.md here).

    PYTHONPATH=$PWD python data/evaluate/build_labelled_real.py TUNED_DIR   # ~5 min on 2 quiet cores

TUNED_DIR is lesson 04's merged checkpoint (``HOME/runs/finetune/merged``). The script writes
/tmp/labelled_real/replies.jsonl with the four course targets' replies (SmolLM2-135M-Instruct with no prompt,
with TaskMaster's prompt, fine-tuned, hybrid) to held-out requests and drift-script turns, and the prompted,
fine-tuned and hybrid replies to single-turn suite attacks, decoded as lesson 05 does (temperature 0.7,
48 new tokens, seeded). The labels are added by hand afterwards, following LABELLING.md.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from personalab import evaluate, persona
from personalab.evaluate.targets import base_model_dir, finetune_base
from personalab.persona import load_overlay, render_overlay

OUT = Path("/tmp/labelled_real/replies.jsonl")


def requests(n: int) -> list[str]:
    """Held-out first user messages (lesson 03's eval split) and drift-script turns, deduplicated."""
    from personalab import finetune

    rows, _ = finetune.load_examples(finetune.dataset_paths().eval)
    users = [r["messages"][0]["content"] for r in rows if r["messages"][0]["role"] == "user"]
    for script in evaluate.load_scripts():
        users += [t.user for t in script.turns]
    seen: list[str] = []
    for u in users:
        if u not in seen:
            seen.append(u)
    random.Random(7).shuffle(seen)
    return seen[:n]


def generate(model_dir: Path, system: str | None, users: list[str], seed: int) -> list[str]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    out = []
    for i in range(0, len(users), 8):
        chunk = users[i : i + 8]
        texts = [tok.apply_chat_template(([{"role": "system", "content": system}] if system else [])
                                         + [{"role": "user", "content": u}], tokenize=False,
                                         add_generation_prompt=True) for u in chunk]
        batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(seed + i)
        with torch.no_grad():
            ids = model.generate(**batch, max_new_tokens=48, do_sample=True, temperature=0.7, top_p=1.0,
                                 pad_token_id=tok.pad_token_id or tok.eos_token_id)
        out += [tok.decode(row[batch["input_ids"].shape[1]:], skip_special_tokens=True).strip() for row in ids]
        print(f"  {model_dir.name}: {len(out)}/{len(users)}", flush=True)
    return out


def main(tuned: Path) -> None:
    spec = persona.taskmaster()
    base = base_model_dir(finetune_base())
    hybrid_prompt = render_overlay(load_overlay("marketing"))
    users = requests(36)
    attacks = [a for a in evaluate.load_attacks() if len(a.turns) == 1]
    random.Random(11).shuffle(attacks)
    attacks = attacks[:20]
    jobs = [
        ("no prompt", base, None, users, "base"),
        ("prompted", base, spec.render(), users, "base"),
        ("fine-tuned", tuned, None, users, "tuned"),
        ("hybrid", tuned, hybrid_prompt, users, "tuned"),
        ("prompted", base, spec.render(), [a.turns[0] for a in attacks], "attack"),
        ("fine-tuned", tuned, None, [a.turns[0] for a in attacks], "attack"),
        ("hybrid", tuned, hybrid_prompt, [a.turns[0] for a in attacks], "attack"),
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for target, model_dir, system, msgs, kind in jobs:
        replies = generate(model_dir, system, msgs, seed=len(rows))
        for j, (user, reply) in enumerate(zip(msgs, replies, strict=True)):
            row = {"target": target, "user": user, "reply": reply}
            if kind == "attack":
                row["attack"] = attacks[j].id
            rows.append(row)
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(len(rows), "replies ->", OUT)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
