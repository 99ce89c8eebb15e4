"""The on-disk token cache: hits skip the tokenizer, any change to what decides the ids misses,
and what comes back is exactly what ``batching.encode`` returns."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from tuneflow.data import token_cache
from tuneflow.data.batching import EncodedSplit, encode
from tuneflow.data.tasks import TextSplit
from tuneflow.data.token_cache import STATS, cache_file, cached_encode, default_cache_dir, split_fingerprint

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the a cat dog bird sat ran on under mat rug news sport business world stock market team won lost "
    "game price rose fell today city rain sun ##s ##ed"
).split()


def write_vocab(folder: Path, words: list[str] = WORDS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(SPECIALS + words) + "\n", encoding="utf-8")
    return folder


def load_tokenizer(folder: Path):
    # Note: in transformers 5, BertTokenizerFast(vocab_file=...) silently ignores the file (every word
    # becomes [UNK]); from_pretrained on the folder reads vocab.txt.
    from transformers import BertTokenizerFast

    return BertTokenizerFast.from_pretrained(str(folder))


class CountingTokenizer:
    """A real tokenizer that counts how often it is asked to tokenise."""

    def __init__(self, inner):
        self._inner = inner
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._inner(*args, **kwargs)

    def __len__(self) -> int:
        return len(self._inner)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def sentences(n: int, seed: int, *, lo: int = 1, hi: int = 30) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = [w for w in WORDS if not w.startswith("##")] + ["unknownword", "Cats", "DOGS!"]
    return [" ".join(rng.choice(vocab, size=int(rng.integers(lo, hi)))) for _ in range(n)]


def make_split(n: int = 40, *, seed: int = 0, pairs: bool = False) -> TextSplit:
    rng = np.random.default_rng(seed + 1)
    return TextSplit(
        texts=sentences(n, seed),
        pairs=sentences(n, seed + 100) if pairs else None,
        labels=rng.integers(0, 3, size=n).astype(np.int64),
    )


def assert_same(a: EncodedSplit, b: EncodedSplit) -> None:
    assert len(a) == len(b)
    for x, y in zip(a.input_ids, b.input_ids):
        assert x.dtype == y.dtype == np.int64
        np.testing.assert_array_equal(x, y)
    assert (a.token_type_ids is None) == (b.token_type_ids is None)
    if a.token_type_ids is not None:
        for x, y in zip(a.token_type_ids, b.token_type_ids):
            assert x.dtype == y.dtype == np.int64
            np.testing.assert_array_equal(x, y)
    assert a.labels.dtype == b.labels.dtype == np.int64
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.lengths, b.lengths)


@pytest.fixture
def tokenizer(tmp_path):
    return CountingTokenizer(load_tokenizer(write_vocab(tmp_path / "tok")))


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


def encode_cached(tok, split, max_length=16, *, cache_dir, task="task", name="train"):
    return cached_encode(tok, split, max_length, task_name=task, split_name=name, cache_dir=cache_dir)


def test_second_call_is_a_hit_and_does_not_tokenise(tokenizer, cache_dir):
    split = make_split()
    hits, misses = STATS.hits, STATS.misses
    first = encode_cached(tokenizer, split, cache_dir=cache_dir)
    assert tokenizer.calls == 1 and STATS.misses == misses + 1 and STATS.hits == hits
    assert cache_file(tokenizer, split, 16, task_name="task", split_name="train", cache_dir=cache_dir).is_file()

    second = encode_cached(tokenizer, split, cache_dir=cache_dir)
    assert tokenizer.calls == 1, "a hit must not call the tokenizer"
    assert STATS.hits == hits + 1 and STATS.misses == misses + 1
    assert_same(first, second)


def test_a_fresh_tokenizer_object_in_another_process_would_hit(tmp_path, cache_dir):
    # A worker process loads its own tokenizer from the same folder: same key, so a hit.
    folder = write_vocab(tmp_path / "tok")
    split = make_split()
    encode_cached(CountingTokenizer(load_tokenizer(folder)), split, cache_dir=cache_dir)
    other = CountingTokenizer(load_tokenizer(folder))
    encode_cached(other, split, cache_dir=cache_dir)
    assert other.calls == 0


@pytest.mark.parametrize("pairs", [False, True])
@pytest.mark.parametrize("max_length", [4, 16, 64])
def test_results_identical_to_encode(tokenizer, cache_dir, pairs, max_length):
    split = make_split(pairs=pairs)
    expected = encode(tokenizer._inner, split, max_length)
    assert expected.token_type_ids is not None
    missed = encode_cached(tokenizer, split, max_length, cache_dir=cache_dir)
    hit = encode_cached(tokenizer, split, max_length, cache_dir=cache_dir)
    assert tokenizer.calls == 1
    assert_same(expected, missed)
    assert_same(expected, hit)
    if max_length == 4:
        assert hit.lengths.max() == 4  # truncation really happened and was cached as such


def test_tokenizer_without_token_types_round_trips(tokenizer, cache_dir):
    split = make_split()
    plain = encode(tokenizer._inner, split, 16)
    stripped = EncodedSplit(input_ids=plain.input_ids, token_type_ids=None, labels=plain.labels)
    path = cache_file(tokenizer, split, 16, task_name="t", split_name="s", cache_dir=cache_dir)
    token_cache._save(path, stripped)
    assert_same(stripped, token_cache._load(path, len(split)))


def _changed(split: TextSplit, **kw) -> TextSplit:
    fields = {"texts": list(split.texts), "pairs": split.pairs, "labels": split.labels.copy(), **kw}
    return TextSplit(**fields)


@pytest.mark.parametrize(
    "change",
    ["text", "label", "add_pairs", "pair_text", "reorder", "drop_row", "max_length", "task", "split_name"],
)
def test_any_change_to_the_key_misses(tokenizer, cache_dir, change):
    base = make_split(pairs=change == "pair_text")
    encode_cached(tokenizer, base, cache_dir=cache_dir)
    split, max_length, task, name = base, 16, "task", "train"
    if change == "text":
        split = _changed(base, texts=[base.texts[0] + " cat", *base.texts[1:]])
    elif change == "label":
        labels = base.labels.copy()
        labels[3] = (labels[3] + 1) % 3
        split = _changed(base, labels=labels)
    elif change == "add_pairs":
        split = _changed(base, pairs=sentences(len(base), 7))
    elif change == "pair_text":
        split = _changed(base, pairs=[*base.pairs[:-1], base.pairs[-1] + " dog"])
    elif change == "reorder":
        split = base.take(np.arange(len(base))[::-1])
    elif change == "drop_row":
        split = base.take(np.arange(len(base) - 1))
    elif change == "max_length":
        max_length = 8
    elif change == "task":
        task = "other-task"
    elif change == "split_name":
        name = "validation"
    got = encode_cached(tokenizer, split, max_length, cache_dir=cache_dir, task=task, name=name)
    assert tokenizer.calls == 2, "a changed key must re-tokenise"
    assert_same(encode(tokenizer._inner, split, max_length), got)


def test_overwritten_vocab_with_the_same_name_and_size_misses(tmp_path, cache_dir):
    folder = write_vocab(tmp_path / "tok")
    split = make_split()
    before = encode_cached(CountingTokenizer(load_tokenizer(folder)), split, cache_dir=cache_dir)
    write_vocab(folder, list(reversed(WORDS)))  # same path, same vocab size, other ids
    other = CountingTokenizer(load_tokenizer(folder))
    after = encode_cached(other, split, cache_dir=cache_dir)
    assert other.calls == 1
    assert_same(encode(other._inner, split, 16), after)
    assert any(not np.array_equal(x, y) for x, y in zip(before.input_ids, after.input_ids))


def test_key_ignores_the_truncation_state_left_by_earlier_calls(tokenizer, cache_dir):
    split = make_split()
    key = cache_file(tokenizer, split, 16, task_name="t", split_name="s", cache_dir=cache_dir)
    tokenizer(["the cat"], truncation=True, max_length=3)  # leaves truncation settings in the backend
    assert cache_file(tokenizer, split, 16, task_name="t", split_name="s", cache_dir=cache_dir) == key


def test_fingerprint_sees_moved_text_boundaries():
    labels = np.zeros(2, dtype=np.int64)
    a = TextSplit(texts=["ab", "c"], pairs=None, labels=labels)
    b = TextSplit(texts=["a", "bc"], pairs=None, labels=labels)
    c = TextSplit(texts=["ab", "c"], pairs=["", ""], labels=labels)
    d = TextSplit(texts=["a\x1fb", "c"], pairs=None, labels=labels)  # texts holding the separator
    e = TextSplit(texts=["a", "b\x1fc"], pairs=None, labels=labels)
    assert len({split_fingerprint(x) for x in (a, b, c, d, e)}) == 5
    assert split_fingerprint(a) == split_fingerprint(TextSplit(texts=["ab", "c"], pairs=None, labels=labels.copy()))


def test_corrupt_file_is_a_miss_and_gets_rewritten(tokenizer, cache_dir):
    split = make_split()
    path = cache_file(tokenizer, split, 16, task_name="task", split_name="train", cache_dir=cache_dir)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        got = encode_cached(tokenizer, split, cache_dir=cache_dir)
    assert tokenizer.calls == 1
    assert_same(encode(tokenizer._inner, split, 16), got)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode_cached(tokenizer, split, cache_dir=cache_dir)
    assert tokenizer.calls == 1


def test_unwritable_cache_warns_and_still_returns_the_encoding(tokenizer, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    errors = STATS.write_errors
    with pytest.warns(RuntimeWarning, match="cannot write"):
        got = encode_cached(tokenizer, make_split(), cache_dir=blocker / "cache")
    assert STATS.write_errors == errors + 1
    assert_same(encode(tokenizer._inner, make_split(), 16), got)


def test_default_dir_follows_the_environment(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNEFLOW_CACHE_DIR", str(tmp_path / "root"))
    assert default_cache_dir() == tmp_path / "root" / "tokens"
    encode_cached(tokenizer, make_split(), cache_dir=None)
    assert len(list((tmp_path / "root" / "tokens").glob("*.npz"))) == 1
    monkeypatch.delenv("TUNEFLOW_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "tuneflow" / "tokens"


def test_concurrent_writers_and_readers_never_see_a_partial_file(tokenizer, cache_dir):
    split = make_split(200, pairs=True)
    expected = encode(tokenizer._inner, split, 32)
    path = cache_file(tokenizer, split, 32, task_name="task", split_name="train", cache_dir=cache_dir)
    failures: list[str] = []

    def writer():
        for _ in range(4):
            token_cache._save(path, expected)

    def reader():
        for _ in range(15):
            got = token_cache._load(path, len(split))  # None here means a torn or inconsistent file
            if got is None:
                failures.append("unreadable")
                continue
            try:
                assert_same(expected, got)
            except AssertionError as err:
                failures.append(str(err))

    token_cache._save(path, expected)  # readers start once the file exists, so None is always a failure
    threads = [threading.Thread(target=writer) for _ in range(4)] + [threading.Thread(target=reader) for _ in range(4)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not failures
    assert not [w for w in caught if "token cache" in str(w.message)]
    assert sorted(p.name for p in cache_dir.iterdir()) == [path.name], "temporary files must not be left behind"
