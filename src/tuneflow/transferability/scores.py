"""Transferability scores: how well a (frozen) encoder suits a target task, without fine-tuning it.

* :func:`logme` (You et al., ICML 2021): the maximised evidence of a Bayesian linear model from
  the encoder's features to each one-hot target column, per sample, averaged over classes.
* :func:`leep` (Nguyen et al., ICML 2020): the log expected empirical prediction of a classifier's
  source-task head, re-mapped to target labels through the empirical P(y | z).

Both are higher-is-better and only need one forward pass over a sample of target training rows.
The scores are pure NumPy; the feature helpers at the bottom import torch / transformers lazily.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Pooling = Literal["cls", "mean"]


# MacKay's fixed-point updates converge linearly; they usually settle within ten steps, and the
# vectorised loop over classes costs O(k * C) per step, so a generous cap is cheap.
_MAX_ITERATIONS = 1000


_T_TOLERANCE = 1e-10  # relative change of alpha / beta


_EVIDENCE_TOLERANCE = 1e-13  # absolute change of the per-sample evidence (for drifts towards beta -> inf)


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME of ``features`` (N x D) for integer ``labels`` (N,): mean over classes of log p(y_c | F) / N.

    For each class c, y_c is the one-hot column and the model is y_c = F w + noise with
    w ~ N(0, 1/alpha I) and noise ~ N(0, 1/beta I); alpha and beta maximise the evidence (found by
    the fixed-point updates of the paper). One thin SVD of F serves every class.
    """
    evidence, _, _ = logme_details(features, labels)
    return float(np.mean(evidence))


def logme_details(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (evidence per sample, alpha, beta) at the fixed point; classes in sorted label order."""
    f = _check_features(features)
    y = _one_hot(labels, len(f))
    n, d = f.shape
    # Thin SVD: F = U diag(s) Vt with min(N, D) singular values; only the nonzero ones (the rank k)
    # enter the evidence. The D - k zero eigenvalues of F^T F cancel between the prior and log|A|,
    # so N < D (k <= N) needs no special path beyond dropping zeros.
    u, s, _ = np.linalg.svd(f, full_matrices=False)
    keep = s > s.max(initial=0.0) * max(n, d) * np.finfo(np.float64).eps
    if not keep.any():
        raise ValueError("features are all zero")
    u, sigma = u[:, keep], (s[keep] ** 2)[:, None]  # sigma: (k, 1) eigenvalues of F^T F
    k = sigma.shape[0]
    x2 = (u.T @ y) ** 2  # (k, C): y_c in the singular basis
    # Part of y_c outside the column space of F: no choice of w can fit it.
    outside = np.maximum((y * y).sum(axis=0) - x2.sum(axis=0), 0.0)

    def terms(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """gamma (effective parameters), N - gamma, |m|^2 and |y - F m|^2 at the ratio t = alpha / beta."""
        shrink = t / (sigma + t)  # 1 - sigma / (sigma + t), without the cancellation when t << sigma
        gamma = (sigma / (sigma + t)).sum(axis=0)
        rest = (n - k) + shrink.sum(axis=0)
        m2 = (x2 * sigma / (sigma + t) ** 2).sum(axis=0)
        res2 = (x2 * shrink**2).sum(axis=0) + outside
        return gamma, rest, m2, res2

    def updates(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MacKay's fixed-point step: alpha = gamma / |m|^2, beta = (N - gamma) / |y - F m|^2."""
        gamma, rest, m2, res2 = terms(t)
        # The floors only matter for degenerate targets (y_c inside, or orthogonal to, the span of F).
        return gamma / np.maximum(m2, tiny), np.maximum(rest, tiny) / np.maximum(res2, tiny)

    def evidence(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """log p(y_c | alpha, beta) / N, the marginal likelihood of Bayesian linear regression."""
        _, _, m2, res2 = terms(alpha / beta)
        log_det = np.log(alpha + beta * sigma).sum(axis=0)  # log|A| less the (D - k) log alpha that cancel
        total = (
            k / 2.0 * np.log(alpha) + n / 2.0 * np.log(beta) - 0.5 * log_det
            - beta / 2.0 * res2 - alpha / 2.0 * m2 - n / 2.0 * np.log(2.0 * np.pi)
        )
        return total / n

    tiny = np.finfo(np.float64).tiny
    # Where the evidence peaks at a boundary (N <= D: y_c fits exactly as beta -> inf; or y_c is all
    # noise as alpha -> inf) the iterates drift towards it geometrically; the evidence converges, and
    # keeping t = alpha / beta within wide bounds of the spectrum keeps every term finite meanwhile.
    t_low, t_high = sigma.min() * 1e-12, sigma.max() * 1e12
    t = np.ones(y.shape[1])  # alpha = beta = 1, as in the paper
    alpha, beta = updates(t)
    current = evidence(alpha, beta)
    for _ in range(_MAX_ITERATIONS):
        t_next = np.clip(alpha / beta, t_low, t_high)
        alpha, beta = updates(t_next)
        previous, current = current, evidence(alpha, beta)
        settled = np.abs(t_next - t) <= _T_TOLERANCE * t
        flat = np.abs(current - previous) <= _EVIDENCE_TOLERANCE
        t = t_next
        if np.all(settled | flat):
            break
    return current, alpha, beta


def _check_features(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2 or f.shape[1] < 1:
        raise ValueError(f"features must be an N x D array with N >= 2, got shape {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or infinite values")
    return f


def _one_hot(labels: np.ndarray, n: int) -> np.ndarray:
    """One column per class present in ``labels`` (an absent class has no evidence to speak of)."""
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} feature rows")
    classes, index = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError("labels must contain at least 2 classes")
    y = np.zeros((n, len(classes)), dtype=np.float64)
    y[np.arange(n), index] = 1.0
    return y


def leep(source_probs: np.ndarray, target_labels: np.ndarray) -> float:
    """LEEP of a source head's softmax outputs theta (N x C_s) for integer target labels (N,).

    With the empirical joint P(y, z) = 1/N sum_i theta_z(x_i) [y_i = y] and P(y | z) = P(y, z) / P(z),
    the score is mean_i log sum_z P(y_i | z) theta_z(x_i). It is <= 0, and by Jensen's inequality
    >= -H(Y | Z) >= -H(Y) >= -log C_target, where H(Y) is the entropy of the target labels.
    """
    theta = np.asarray(source_probs, dtype=np.float64)
    if theta.ndim != 2 or len(theta) == 0:
        raise ValueError(f"source_probs must be an N x C_s array, got shape {theta.shape}")
    if np.any(theta < 0) or not np.all(np.isfinite(theta)):
        raise ValueError("source_probs must be finite and non-negative")
    totals = theta.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise ValueError("every row of source_probs needs positive mass")
    theta = theta / totals  # tolerate float32 softmax rows that do not sum to exactly 1
    labels = np.asarray(target_labels).reshape(-1)
    if len(labels) != len(theta):
        raise ValueError(f"{len(labels)} labels for {len(theta)} rows of source_probs")
    classes, index = np.unique(labels, return_inverse=True)
    y = np.zeros((len(labels), len(classes)), dtype=np.float64)
    y[np.arange(len(labels)), index] = 1.0
    joint = y.T @ theta / len(labels)  # (C_t, C_s)
    marginal = joint.sum(axis=0, keepdims=True)  # P(z)
    # A source class no row puts mass on carries no information; keep it out of the division.
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)  # P(y | z)
    expected = np.einsum("nz,nz->n", theta, conditional[index])  # sum_z P(y_i | z) theta_z(x_i)
    return float(np.mean(np.log(expected)))
