"""Length-bucketed, dynamically padded batches: every row exactly once, far less padding than random
batches, and the same numbers as a loop that pads every row to ``max_length``."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import peft  # noqa: F401  fit() imports it on first use (is_head_parameter); pay that once, at collection
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast, get_linear_schedule_with_warmup

from tuneflow.data.batching import EncodedSplit, bucketed_batches, collate, encode
from tuneflow.data.tasks import TextSplit
from tuneflow.training.runtime import Runtime
from tuneflow.training.loop import fit
from tuneflow.training.predict import predict

CPU = Runtime(torch.device("cpu"), None)
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the a cat dog bird sat ran on under mat rug news sport business world stock market team won lost "
    "game price rose fell today city rain sun"
).split()
MAX_LENGTH = 24


# --- index batches ---------------------------------------------------------------------------------


def check_cover(batches: list[np.ndarray], n: int, batch_size: int) -> None:
    """Every row exactly once, full batches except at most one partial one."""
    flat = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
    np.testing.assert_array_equal(np.sort(flat), np.arange(n))
    sizes = [len(b) for b in batches]
    assert len(batches) == math.ceil(n / batch_size)
    assert all(0 < s <= batch_size for s in sizes)
    assert sum(s < batch_size for s in sizes) == (1 if n % batch_size else 0)


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n", [0, 1, 7, 32, 33, 100, 1601, 3205])  # 1601 = one 32*50 chunk + 1 row
@pytest.mark.parametrize("batch_size", [1, 8, 32])
def test_every_example_exactly_once(n, batch_size, shuffle):
    lengths = np.random.default_rng(n).integers(1, 64, size=n)
    batches = bucketed_batches(lengths, batch_size, shuffle=shuffle, rng=np.random.default_rng(0))
    check_cover(batches, n, batch_size)


def test_unshuffled_batches_are_one_global_length_sort():
    lengths = np.random.default_rng(1).integers(1, 100, size=250)
    batches = bucketed_batches(lengths, 16, shuffle=False)
    assert np.all(np.diff(lengths[np.concatenate(batches)]) >= 0)
    again = bucketed_batches(lengths, 16, shuffle=False)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_shuffled_batches_follow_the_seed():
    lengths = np.random.default_rng(2).integers(1, 100, size=500)

    def run(seed):
        return np.concatenate(bucketed_batches(lengths, 8, shuffle=True, rng=np.random.default_rng(seed)))

    np.testing.assert_array_equal(run(0), run(0))  # a trial can be repeated
    assert not np.array_equal(run(0), run(1))  # and different seeds see different batches


def padded_tokens(lengths: np.ndarray, batches: list[np.ndarray]) -> int:
    return int(sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches))


@pytest.mark.parametrize("batch_size", [8, 32, 128])
def test_bucketing_cuts_padding_against_random_batches(batch_size):
    rng = np.random.default_rng(batch_size)
    # Skewed like real text: most rows short, a long tail up to max_length.
    lengths = np.clip(rng.lognormal(3.5, 0.5, size=4000).astype(np.int64), 2, 128)
    bucketed = bucketed_batches(lengths, batch_size, shuffle=True, rng=np.random.default_rng(0))
    order = rng.permutation(len(lengths))
    random_batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    assert padded_tokens(lengths, bucketed) < 0.2 * padded_tokens(lengths, random_batches)
    assert padded_tokens(lengths, bucketed) < 0.1 * lengths.sum()


# --- a tiny real BERT ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    (folder / "vocab.txt").write_text("\n".join(SPECIALS + WORDS) + "\n", encoding="utf-8")
    # from_pretrained reads vocab.txt; in transformers 5 BertTokenizerFast(vocab_file=...) ignores it.
    return BertTokenizerFast.from_pretrained(str(folder))


def tiny_bert(seed: int = 0):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=3,
        hidden_dropout_prob=0.0,  # dropout off: the padded and unpadded runs must be comparable
        attention_probs_dropout_prob=0.0,
    )
    return BertForSequenceClassification(config)


def make_data(tokenizer, n: int, *, seed: int = 0, pairs: bool = True) -> EncodedSplit:
    rng = np.random.default_rng(seed)

    def text(lo, hi):
        return " ".join(rng.choice(WORDS, size=int(rng.integers(lo, hi))))

    split = TextSplit(
        texts=[text(1, 25) for _ in range(n)],
        pairs=[text(1, 6) for _ in range(n)] if pairs else None,
        labels=rng.integers(0, 3, size=n).astype(np.int64),
    )
    data = encode(tokenizer, split, MAX_LENGTH)
    assert data.lengths.min() < data.lengths.max() == MAX_LENGTH  # ragged, some rows truncated
    return data


def pad_to(data: EncodedSplit, index: np.ndarray, width: int, pad_id: int) -> dict[str, torch.Tensor]:
    """The unbucketed way: every row padded to the same fixed width, in the given order."""
    n = len(index)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    types = torch.zeros((n, width), dtype=torch.long)
    for j, i in enumerate(index):
        row = torch.from_numpy(data.input_ids[i])
        ids[j, : len(row)] = row
        mask[j, : len(row)] = 1
        types[j, : len(row)] = torch.from_numpy(data.token_type_ids[i])
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "labels": torch.from_numpy(data.labels[index])}


def test_collate_pads_to_the_longest_row_of_the_batch(tokenizer):
    data = make_data(tokenizer, 20)
    index = np.array([3, 0, 7])
    batch = collate(data, index, pad_id=tokenizer.pad_token_id, device=torch.device("cpu"))
    width = int(data.lengths[index].max())
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["token_type_ids"].shape == (3, width)
    for j, i in enumerate(index):
        k = len(data.input_ids[i])
        np.testing.assert_array_equal(batch["input_ids"][j, :k].numpy(), data.input_ids[i])
        assert (batch["input_ids"][j, k:] == tokenizer.pad_token_id).all()
        assert batch["attention_mask"][j].sum() == k
        np.testing.assert_array_equal(batch["token_type_ids"][j, :k].numpy(), data.token_type_ids[i])
    np.testing.assert_array_equal(batch["labels"].numpy(), data.labels[index])


def test_padding_width_changes_neither_loss_nor_gradients(tokenizer):
    data = make_data(tokenizer, 16, seed=3)
    model = tiny_bert()
    pad_id = tokenizer.pad_token_id
    index = bucketed_batches(data.lengths, 8, shuffle=True, rng=np.random.default_rng(0))[0]
    results = []
    for batch in (collate(data, index, pad_id=pad_id, device=torch.device("cpu")), pad_to(data, index, MAX_LENGTH + 8, pad_id)):
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        results.append((loss.item(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert loss_a == pytest.approx(loss_b, abs=1e-6)
    for name, grad in grads_a.items():
        torch.testing.assert_close(grad, grads_b[name], atol=1e-6, rtol=1e-5, msg=name)


def test_predict_matches_one_row_at_a_time(tokenizer):
    data = make_data(tokenizer, 13, seed=1)
    model = tiny_bert()
    logits = predict(model, data, runtime=CPU, pad_id=tokenizer.pad_token_id, batch_size=5)  # 2 full + 1 partial
    assert logits.shape == (13, 3)
    with torch.no_grad():
        for i in range(len(data)):
            single = model(
                input_ids=torch.from_numpy(data.input_ids[i])[None],
                token_type_ids=torch.from_numpy(data.token_type_ids[i])[None],
            ).logits[0]
            np.testing.assert_allclose(logits[i], single.numpy(), atol=1e-4, err_msg=f"row {i}")


def reference_fit(model, data: EncodedSplit, *, epochs: int, lr: float, pad_id: int) -> list[float]:
    """A plain loop: the whole split as one batch padded to max_length, rows in file order."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, epochs)
    batch = pad_to(data, np.arange(len(data)), MAX_LENGTH, pad_id)
    losses = []
    model.train()
    for _ in range(epochs):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def test_fit_matches_a_fixed_padding_loop(tokenizer):
    # One batch per epoch, so both loops see the same content in each step; fit reorders the rows
    # by length and pads only to the longest, the reference pads everything to max_length.
    data = make_data(tokenizer, 16, seed=2)
    ours, theirs = tiny_bert(), tiny_bert()
    theirs.load_state_dict(ours.state_dict())
    stats = fit(ours, data, runtime=CPU, pad_id=tokenizer.pad_token_id, epochs=3, lr=1e-3, batch_size=len(data), seed=0)
    expected = reference_fit(theirs, data, epochs=3, lr=1e-3, pad_id=tokenizer.pad_token_id)
    np.testing.assert_allclose(stats.epoch_losses, expected, rtol=1e-5)
    assert stats.epoch_losses[-1] < stats.epoch_losses[0]  # it did learn something
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=name)


def test_fit_sees_every_example_once_per_epoch_with_a_partial_last_batch(tokenizer):
    data = make_data(tokenizer, 11, pairs=False)
    model = tiny_bert()
    before = copy.deepcopy(model.state_dict())
    stats = fit(model, data, runtime=CPU, pad_id=tokenizer.pad_token_id, epochs=2, lr=1e-3, batch_size=4, seed=0)
    assert stats.examples_seen == 2 * 11
    assert len(stats.epoch_losses) == 2 and all(math.isfinite(x) for x in stats.epoch_losses)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.slow  # inductor compiles C++ on the CPU: ~a minute
def test_compiled_fit_matches_the_eager_loop(tokenizer):
    data = make_data(tokenizer, 24, seed=4)
    eager, compiled = tiny_bert(), tiny_bert()
    compiled.load_state_dict(eager.state_dict())
    kwargs = dict(pad_id=tokenizer.pad_token_id, epochs=2, lr=1e-3, batch_size=8, seed=0)
    a = fit(eager, data, runtime=CPU, **kwargs)
    b = fit(compiled, data, runtime=Runtime(torch.device("cpu"), None, compile=True), **kwargs)
    np.testing.assert_allclose(b.epoch_losses, a.epoch_losses, rtol=1e-4)
    # The compiled view shares the parameters: the trial's own model was trained, not a copy.
    for (name, x), (_, y) in zip(eager.named_parameters(), compiled.named_parameters()):
        torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4, msg=name)
