"""Losses that move features between domains: gradient reversal (DANN), CORAL and multi-bandwidth MMD.

Imported only when a strategy trains (it needs torch); ``tuneflow validate`` never loads it.
"""

from __future__ import annotations

import math

import torch


class GradientReversal(torch.autograd.Function):
    """Identity on the way forward; multiplies the gradient by ``-lambd`` on the way back (Ganin & Lempitsky, 2015)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lambd: float) -> torch.Tensor:
        ctx.lambd = float(lambd)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return -ctx.lambd * grad_output, None


def grad_reverse(x: torch.Tensor, lambd: float = 1.0) -> torch.Tensor:
    return GradientReversal.apply(x, lambd)


def dann_lambda(progress: float, scale: float = 1.0) -> float:
    """DANN's schedule ``2 / (1 + exp(-10 p)) - 1`` (0 at the start, ~1 at the end), times ``scale``.

    The domain classifier is random at first; ramping the reversed gradient up keeps its early noise
    from wrecking the encoder.
    """
    return scale * (2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0)


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL (Sun & Saenko, 2016): squared Frobenius distance of the feature covariances / 4d²."""
    source, target = source.float(), target.float()
    d = source.shape[1]
    return (_covariance(source) - _covariance(target)).pow(2).sum() / (4.0 * d * d)


def _covariance(x: torch.Tensor) -> torch.Tensor:
    centred = x - x.mean(dim=0, keepdim=True)
    return centred.T @ centred / max(x.shape[0] - 1, 1)


MMD_BANDWIDTH_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


def mmd_loss(source: torch.Tensor, target: torch.Tensor, factors: tuple[float, ...] = MMD_BANDWIDTH_FACTORS) -> torch.Tensor:
    """Squared MMD with a mixture of RBF kernels (the biased estimator; multi-kernel as in DAN, Long et al. 2015).

    Bandwidths are ``factors`` times the mean pairwise squared distance of the joined batch (detached),
    so the kernel scale follows the features instead of being one more hyperparameter. The kernels are
    averaged, not summed, so the value stays in [0, 2] whatever the number of bandwidths.
    """
    source, target = source.float(), target.float()
    joined = torch.cat([source, target])
    distances = torch.cdist(joined, joined).pow(2)
    n = joined.shape[0]
    base = distances.detach().sum() / max(n * n - n, 1)
    base = torch.clamp(base, min=1e-12)
    kernel = sum(torch.exp(-distances / (base * f)) for f in factors) / len(factors)
    ns = source.shape[0]
    k_ss, k_tt, k_st = kernel[:ns, :ns], kernel[ns:, ns:], kernel[:ns, ns:]
    return k_ss.mean() + k_tt.mean() - 2.0 * k_st.mean()


ALIGN_LOSSES = {"coral": coral_loss, "mmd": mmd_loss}
