"""Tiny random models of eight families, built from configs, saved as local model folders.

Test modules import the ``tiny_models`` fixture from here (a second conftest.py would shadow the root one).

Each is a 2-layer, hidden-32 ``*ForSequenceClassification`` for 2 labels (a "fine-tuned SST-2"
checkpoint, so a 3-class target also exercises the head swap) with a tokenizer like its family's:
WordPiece for BERT-likes, byte-level BPE for RoBERTa and the decoders, which get no padding token.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import (  # the root conftest (tests/ is on sys.path)
    FILLER,
    SOURCE_WORDS,
    TARGET_WORDS,
)

WORDS = sorted({w for group in (TARGET_WORDS, SOURCE_WORDS) for ws in group.values() for w in ws} | set(FILLER))

ENCODERS = ("bert", "roberta", "distilbert", "deberta-v2", "electra")
DECODERS = ("gpt2", "llama", "qwen2")
ARCHITECTURES = ENCODERS + DECODERS

# Per family: config keys (sizes spelt the family's way) and the tokenizer's kind.
_SIZES = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64}
_CONFIGS = {
    "bert": _SIZES,
    "electra": {**_SIZES, "embedding_size": 32},
    "deberta-v2": {**_SIZES, "relative_attention": True, "pos_att_type": ["p2c", "c2p"], "max_relative_positions": 32},
    "roberta": {**_SIZES, "max_position_embeddings": 66},
    "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64, "max_position_embeddings": 64},
    "gpt2": {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64},
    "llama": {**_SIZES, "num_key_value_heads": 2},
    "qwen2": {**_SIZES, "num_key_value_heads": 2},
}
_NO_DROPOUT = ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout", "resid_pdrop",
               "embd_pdrop", "attn_pdrop", "seq_classif_dropout", "summary_first_dropout")


def _wordpiece():
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + WORDS)}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def _byte_bpe(specials: list[str], *, bos: str | None, eos: str, pad: str | None, template: str, **extra):
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([" ".join(WORDS)] * 20 + WORDS, trainer)
    ids = {t: tok.token_to_id(t) for t in specials}
    tok.post_processor = processors.TemplateProcessing(
        single=template, pair=template.replace("$A", "$A $B:1"), special_tokens=[(t, ids[t]) for t in specials if t in template])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=extra.get("unk"),
                                   model_input_names=["input_ids", "attention_mask"], **{k: v for k, v in extra.items() if k != "unk"})


def family_tokenizer(model_type: str):
    if model_type in ("bert", "electra"):
        return _wordpiece()
    if model_type in ("distilbert", "deberta-v2"):
        tok = _wordpiece()
        tok.model_input_names = ["input_ids", "attention_mask"]  # these families take no token types
        return tok
    if model_type == "roberta":
        return _byte_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"], bos="<s>", eos="</s>", pad="<pad>",
                         template="<s> $A </s>", unk="<unk>", cls_token="<s>", sep_token="</s>", mask_token="<mask>")
    if model_type == "gpt2":
        return _byte_bpe(["<|endoftext|>"], bos="<|endoftext|>", eos="<|endoftext|>", pad=None, template="$A", unk="<|endoftext|>")
    if model_type == "llama":
        return _byte_bpe(["<s>", "</s>", "<unk>"], bos="<s>", eos="</s>", pad=None, template="<s> $A", unk="<unk>")
    if model_type == "qwen2":
        return _byte_bpe(["<|endoftext|>"], bos=None, eos="<|endoftext|>", pad=None, template="$A")
    raise KeyError(model_type)


def build_tiny_model(folder: Path, model_type: str, *, num_labels: int = 2) -> Path:
    """Save a randomly initialised tiny classifier of ``model_type`` and its tokenizer into ``folder``."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    tokenizer = family_tokenizer(model_type)
    tokenizer.save_pretrained(folder)
    special = {f"{name}_token_id": getattr(tokenizer, f"{name}_token_id") for name in ("bos", "eos", "pad")}
    config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), num_labels=num_labels, initializer_range=0.1,
                                  **_CONFIGS[model_type], **special)
    for key in _NO_DROPOUT:  # a few CPU steps should visibly learn the toy task
        if hasattr(config, key):
            setattr(config, key, 0.0)
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """model_type -> a saved tiny 2-label classifier of that family (built on first use)."""

    class _Lazy(dict):
        def __missing__(self, model_type: str) -> Path:
            self[model_type] = build_tiny_model(tmp_path_factory.mktemp(f"tiny-{model_type}"), model_type)
            return self[model_type]

    return _Lazy()
