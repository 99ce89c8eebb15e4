"""The model folder ``gpu_suite.sh`` hands every benchmark, written once before the first step.

    python benchmarks/suite_model.py fp32 SRC OUT   # SRC's weights in float32, with its tokenizer
    python benchmarks/suite_model.py tiny SRC OUT   # a random 2-layer BERT (hidden 32) with SRC's tokenizer

``fp32``: the MiniLM copy that travels to the GPU machine is saved in float16 (to fit the 64 MiB a device
call carries); every system must start from the same float32 master weights, and HF, the anchors and
tuneflow all read this one folder. ``tiny``: the ``--dry-run`` model, so every step runs on a CPU in
seconds with the real tokenizer and data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Small enough that AdamW over its 1M parameters (nearly all in the 30,522-token embedding) costs little
# on two CPU cores; positions up to ceiling.py's max_length of 128.
DRY_RUN_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("fp32", "tiny"))
    parser.add_argument("source", type=Path, help="a model folder with its tokenizer")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(args.source)
    if args.kind == "fp32":
        model = AutoModel.from_pretrained(args.source, dtype=torch.float32)
        model.config.dtype = torch.float32  # so loaders that follow the config's dtype get float32 too
    else:
        torch.manual_seed(0)
        model = BertModel(BertConfig(vocab_size=len(tokenizer), **DRY_RUN_BERT))
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out)
    tokenizer.save_pretrained(args.out)
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    print(f"{args.kind} model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, {', '.join(dtypes)} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
