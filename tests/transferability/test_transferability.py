"""LogME / LEEP against their definitions, and `tuneflow rank` end to end on the tiny BERT."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import yaml

from tuneflow.config.errors import ConfigError
from tuneflow.transferability.scores import leep, logme, logme_details


def _clustered(n: int, d: int, classes: int, seed: int, spread: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Features with one Gaussian cluster per class (plus isotropic noise)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, d)) * spread
    return centres[labels] + rng.normal(size=(n, d)), labels


def _direct_evidence(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log N(y; 0, I / beta + F F^T / alpha) / N: the marginal likelihood, straight from its definition."""
    n = len(f)
    cov = np.eye(n) / beta + f @ f.T / alpha
    sign, log_det = np.linalg.slogdet(cov)
    assert sign > 0
    return float((-0.5 * n * np.log(2 * np.pi) - 0.5 * log_det - 0.5 * y @ np.linalg.solve(cov, y)) / n)


# --------------------------------------------------------------------------------------------
# LogME
# --------------------------------------------------------------------------------------------


def test_logme_prefers_features_that_separate_the_classes():
    f, labels = _clustered(300, 16, 3, seed=0)
    shuffled = np.random.default_rng(1).permutation(labels)
    assert logme(f, labels) > logme(f, shuffled) + 0.1
    # Same for noise features: no structure, no evidence beyond the label marginal.
    noise = np.random.default_rng(2).normal(size=f.shape)
    assert logme(f, labels) > logme(noise, labels) + 0.1


def _evidence_surface(f: np.ndarray, y: np.ndarray):
    """(log alpha, log beta) -> the same evidence via the eigenvalues of F F^T: cheap enough to search."""
    eigenvalues, vectors = np.linalg.eigh(f @ f.T)
    projected = (vectors.T @ y) ** 2

    def evidence(log_alpha, log_beta):
        log_alpha, log_beta = np.asarray(log_alpha)[..., None], np.asarray(log_beta)[..., None]
        variance = np.exp(-log_beta) + eigenvalues * np.exp(-log_alpha)  # eigenvalues of I / beta + F F^T / alpha
        n = len(y)
        return (-0.5 * n * np.log(2 * np.pi) - 0.5 * np.log(variance).sum(-1) - 0.5 * (projected / variance).sum(-1)) / n

    return evidence


@pytest.mark.parametrize(
    "n, d, rank",
    [(150, 12, None), (60, 60, None), (120, 40, 8)],  # N > D, N = D, and a rank-deficient F (zero singular values)
)
def test_logme_is_the_maximised_evidence_of_bayesian_linear_regression(n, d, rank):
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    f, labels = _clustered(n, d, 3, seed=4, spread=0.5)
    if rank is not None:
        f = f[:, :rank] @ rng.normal(size=(rank, d))
    evidence, alpha, beta = logme_details(f, labels)
    assert logme(f, labels) == pytest.approx(float(np.mean(evidence)), abs=1e-12)
    for c in range(3):
        y = (labels == c).astype(np.float64)
        # 1. The value returned is the evidence at the (alpha, beta) found, to numerical precision.
        assert evidence[c] == pytest.approx(_direct_evidence(f, y, alpha[c], beta[c]), abs=1e-10)
        # 2. That (alpha, beta) maximises the evidence: a brute-force search finds nothing better.
        surface = _evidence_surface(f, y)
        assert surface(np.log(alpha[c]), np.log(beta[c])) == pytest.approx(evidence[c], abs=1e-10)
        grid_a, grid_b = np.meshgrid(np.log(alpha[c]) + np.linspace(-7, 7, 141), np.log(beta[c]) + np.linspace(-7, 7, 141))
        values = surface(grid_a, grid_b)
        assert values.max() <= evidence[c] + 1e-12
        start = np.unravel_index(np.argmax(values), values.shape)
        best = minimize(
            lambda p: -surface(p[0], p[1]),
            x0=[grid_a[start], grid_b[start]],
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-15, "maxiter": 4000},
        )
        assert -best.fun <= evidence[c] + 1e-12
        assert -best.fun == pytest.approx(evidence[c], abs=1e-9)


def test_logme_is_finite_for_more_dimensions_than_rows_and_fewer():
    for n, d in ((40, 200), (400, 20), (30, 30)):
        f, labels = _clustered(n, d, 4, seed=n)
        value = logme(f, labels)
        assert np.isfinite(value), (n, d)
        assert value > logme(f, np.random.default_rng(0).permutation(labels)), (n, d)
    # float32 input (what the encoders give) is scored in float64.
    f, labels = _clustered(100, 384, 2, seed=5)
    assert logme(f.astype(np.float32), labels) == pytest.approx(logme(f, labels), abs=1e-4)


def test_logme_rejects_bad_input():
    f, labels = _clustered(20, 4, 2, seed=0)
    with pytest.raises(ValueError, match="labels"):
        logme(f, labels[:-1])
    with pytest.raises(ValueError, match="2 classes"):
        logme(f, np.zeros(20, dtype=int))
    with pytest.raises(ValueError, match="NaN"):
        logme(np.full((20, 4), np.nan), labels)


# --------------------------------------------------------------------------------------------
# LEEP
# --------------------------------------------------------------------------------------------


def _leep_by_definition(theta: np.ndarray, labels: np.ndarray) -> float:
    classes = np.unique(labels)
    joint = np.array([[theta[labels == y, z].sum() / len(labels) for z in range(theta.shape[1])] for y in classes])
    conditional = joint / joint.sum(axis=0, keepdims=True)
    position = {y: i for i, y in enumerate(classes)}
    return float(np.mean([np.log(sum(conditional[position[y], z] * theta[i, z] for z in range(theta.shape[1]))) for i, y in enumerate(labels)]))


def test_leep_matches_its_definition_and_bounds():
    rng = np.random.default_rng(0)
    n, target_classes, source_classes = 400, 4, 3
    labels = rng.integers(0, target_classes, n)
    # Informative: the source head's logits depend on the target label.
    mixing = rng.normal(size=(target_classes, source_classes)) * 3.0
    logits = mixing[labels] + rng.normal(size=(n, source_classes))
    informative = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    random_head = rng.dirichlet(np.ones(source_classes), size=n)
    entropy = -sum(p * np.log(p) for p in np.bincount(labels) / n)
    for theta in (informative, random_head):
        score = leep(theta, labels)
        assert score == pytest.approx(_leep_by_definition(theta, labels), abs=1e-12)
        assert -np.log(target_classes) <= -entropy - 1e-12 <= score <= 0.0
    assert leep(informative, labels) > leep(random_head, labels) + 0.1
    # A head that predicts the label exactly leaves no uncertainty: LEEP = 0.
    assert leep(np.eye(target_classes)[labels], labels) == pytest.approx(0.0, abs=1e-12)
    # A constant head carries nothing: LEEP = -H(Y).
    assert leep(np.full((n, source_classes), 1 / source_classes), labels) == pytest.approx(-entropy, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Ranking: `tuneflow rank` on the tiny BERT
# --------------------------------------------------------------------------------------------


def _rank(*argv: str) -> int:
    from tuneflow.cli.rank import add_rank_parser, cmd_rank

    parser = argparse.ArgumentParser(prog="tuneflow")
    add_rank_parser(parser.add_subparsers(dest="command", required=True))
    return cmd_rank(parser.parse_args(["rank", *map(str, argv)]))


def test_rank_scores_the_default_candidates_and_records_them(make_study, tiny_model_dir, capsys):
    import optuna

    from tuneflow.study.runner import load_config

    study_file = make_study()
    assert _rank(study_file, "--json", "--record", "--rows", 60) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert {r["candidate"] for r in rows} == {"pretrained/cls", "pretrained/mean", "sentiment-tuned/cls", "sentiment-tuned/mean"}
    assert [r["logme"] for r in rows] == sorted((r["logme"] for r in rows), reverse=True)
    for r in rows:
        assert {"candidate", "logme", "leep", "seconds", "kind", "pooling", "rows", "dim"} <= set(r)
        assert np.isfinite(r["logme"]) and r["seconds"] >= 0
        assert r["rows"] == 60  # a capped sample of the target's training rows
        assert r["dim"] == json.loads((tiny_model_dir / "config.json").read_text())["hidden_size"]
        if r["kind"] == "source-fine-tuned":
            assert -np.log(3) - 1e-9 <= r["leep"] <= 0.0
            assert r["source_seconds"] > 0 and 0.0 <= r["source_accuracy"] <= 1.0
        else:
            assert r["leep"] is None and r["source_seconds"] is None
    assert "scoring 4 candidate(s) on 60 target training rows" in err

    config = load_config(study_file)
    study = optuna.load_study(study_name=config.name, storage=config.storage_url())
    stored = study.user_attrs["tuneflow_transferability"]["scores"]
    assert [s["candidate"] for s in stored] == [r["candidate"] for r in rows]
    expected = "sequential" if rows[0]["kind"] == "source-fine-tuned" else "direct"
    # The mapping the ranking chose; every other parameter at the space's centre (not the sampler's draw).
    centre = {"learning_rate": pytest.approx((1e-3 * 5e-3) ** 0.5), "batch_size": 32, "epochs": 1, "method": "full"}
    assert [t.system_attrs["fixed_params"] for t in study.trials] == [{**centre, "mapping": expected}]
    # Ranking again never enqueues the same trial twice.
    assert _rank(study_file, "--record", "--rows", 60, "--quiet") == 0
    second = capsys.readouterr().out
    assert "enqueued: {\"learning_rate\": " in second and f"\"mapping\": \"{expected}\"}}" in second
    study = optuna.load_study(study_name=config.name, storage=config.storage_url())
    enqueued = [t.system_attrs["fixed_params"]["mapping"] for t in study.trials]
    assert len(enqueued) == len(set(enqueued)) and expected in enqueued


def test_rank_reads_a_candidates_file(make_study, tmp_path, capsys):
    study_file = make_study()
    candidates = tmp_path / "candidates.yaml"
    candidates.write_text(
        yaml.safe_dump(
            {
                "rows": 40,
                "max_length": 12,
                "source_tuning": {"rows": 40, "epochs": 1, "learning_rate": 5.0e-3, "batch_size": 8},
                "candidates": [{"pooling": "mean", "name": "plain"}, {"pooling": ["cls"], "source": True}],
            }
        )
    )
    assert _rank(study_file, "--candidates", candidates, "--quiet") == 0
    out = capsys.readouterr().out
    assert "scored on 40 target training rows" in out
    assert "plain" in out and "sentiment-tuned/cls" in out


def test_candidates_file_errors_name_the_file_and_key(tmp_path, make_study):
    from tuneflow.transferability.candidates import load_candidates, resolve_candidates
    from tuneflow.study.runner import plan_study

    bad = tmp_path / "bad.yaml"
    bad.write_text("candidates:\n  - {pooling: max}\n")
    with pytest.raises(ConfigError) as err:
        load_candidates(bad)
    assert str(err.value).startswith(f"{bad}: candidates[0].pooling:")
    bad.write_text("candidates: []\n")
    with pytest.raises(ConfigError, match="candidates: name at least one candidate"):
        load_candidates(bad)
    bad.write_text("rows: 100\ncandidates:\n  - {pooling: cls, sorce: true}\n")
    with pytest.raises(ConfigError, match=r"candidates\[0\]\.sorce: unknown key 'sorce'; did you mean 'source'"):
        load_candidates(bad)

    # `source: true` without a source task, and an unknown packaged model, are caught before any scoring.
    plan = plan_study(str(make_study(source=None, search_space={"parameters": {"learning_rate": {"type": "fixed", "value": 0.001}}})))
    bad.write_text("candidates:\n  - {pooling: cls}\n  - {source: true}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: candidates\[1\]\.source: source: true needs a study"):
        resolve_candidates(plan, load_candidates(bad), file=str(bad))
    bad.write_text("candidates:\n  - {model: 'package:nope'}\n")
    with pytest.raises(ConfigError, match=r"candidates\[0\]\.model: unknown packaged model 'nope'"):
        resolve_candidates(plan, load_candidates(bad), file=str(bad))


def test_prior_trials_follow_the_ranking_within_the_space():
    from tuneflow.transferability.candidates import Candidate, CandidateScore
    from tuneflow.transferability.prior import prior_trials
    from tuneflow.config.search_space import SearchSpace

    def score(name: str, source: bool, value: float, study_model: bool = True) -> CandidateScore:
        candidate = Candidate(name, "m", "/m", None, "cls", "src" if source else None, "m" if study_model else None)
        return CandidateScore(candidate, value, None, 0.0, 10, 4)

    ranking = [score("other", False, 3.0, study_model=False), score("tuned", True, 2.0), score("plain", False, 1.0)]
    both = SearchSpace.from_mapping({"parameters": {"mapping": {"type": "categorical", "choices": ["direct", "sequential"]}}}, "s")
    assert prior_trials(ranking, both) == [{"mapping": "sequential"}]
    assert prior_trials(ranking, both, top_k=3) == [{"mapping": "sequential"}, {"mapping": "direct"}]
    direct_only = SearchSpace.from_mapping({"parameters": {"mapping": {"type": "categorical", "choices": ["direct"]}}}, "s")
    assert prior_trials(ranking, direct_only) == [{"mapping": "direct"}]
    unsearched = SearchSpace.from_mapping({"parameters": {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3}}}, "s")
    assert prior_trials(ranking, unsearched) == []


def test_prior_logme_ranks_records_and_enqueues_before_sampling(make_study, run_cli):
    import optuna

    space = {"parameters": {
        "epochs": {"type": "fixed", "value": 1},
        "mapping": {"type": "categorical", "choices": ["direct", "sequential"]},
    }}
    study_file = make_study(search_space=space, budget={"n_trials": 1}, prior="logme")
    code, _, err = run_cli("run", study_file)
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_file.parent / 'tiny.db'}")
    scores = study.user_attrs["tuneflow_transferability"]["scores"]
    assert len(scores) >= 3 and all("logme" in s for s in scores)
    first = study.trials[0]
    assert first.user_attrs.get("enqueued_by") == "prior: logme"
    assert first.params["mapping"] in ("direct", "sequential")
    # Resuming does not rank again or enqueue twice.
    assert run_cli("run", study_file, "--n-trials", 1)[0] == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{study_file.parent / 'tiny.db'}")
    assert sum(t.user_attrs.get("enqueued_by") == "prior: logme" for t in study.trials) == 1
