"""The Punzi net: a feed-forward classifier with its input normalisation built in.

Abudinen et al., EPJC 82 (2022) 121 (seed configuration, physics.md): 10 hidden layers, width up
to 30, LeakyReLU. Here every hidden layer has ``width`` units; depth, width and activation come from
``TrainingConfig``. The input standardisation (mean, std of the training sample) is stored as
buffers, so the ``state_dict`` alone reproduces the scores; missing inputs (NaN) are set to the
training mean.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "NetSpec",
    "ScoreNet",
    "build_net",
    "resolve_device",
    "state_from_numpy",
    "state_to_numpy",
]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "leaky_relu": nn.LeakyReLU,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}


@dataclass(frozen=True)
class NetSpec:
    """Architecture: inputs, hidden layers, units per layer, activation name."""

    n_inputs: int
    hidden_layers: int
    width: int
    activation: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: activations that overwrite their input: the Linear output before them is used by nothing else,
#: so in place they give bit-identical values and gradients with one allocation less per layer
#: (not ELU: its in-place backward takes the gradient from the output, which rounds differently)
_IN_PLACE = frozenset({"leaky_relu", "relu", "silu"})


def _activation(name: str) -> nn.Module:
    cls = ACTIVATIONS[name]
    return cls(inplace=True) if name in _IN_PLACE else cls()


class ScoreNet(nn.Module):
    """x → logit; ``score = sigmoid(logit)`` in [0, 1]. Inputs are raw features."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, spec: NetSpec) -> None:
        super().__init__()
        if spec.activation not in ACTIVATIONS:
            raise ValueError(f"activation {spec.activation!r}; known: {sorted(ACTIVATIONS)}")
        layers: list[nn.Module] = []
        n_in = spec.n_inputs
        for _ in range(spec.hidden_layers):
            layers += [nn.Linear(n_in, spec.width), _activation(spec.activation)]
            n_in = spec.width
        layers.append(nn.Linear(n_in, 1))
        self.body = nn.Sequential(*layers)
        self.register_buffer("mean", torch.zeros(spec.n_inputs))
        self.register_buffer("std", torch.ones(spec.n_inputs))
        self.spec = spec

    def set_normalisation(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.nan_to_num((x - self.mean) / self.std, nan=0.0, posinf=0.0, neginf=0.0)
        return self.body(z).squeeze(-1)


def build_net(spec: NetSpec, seed: int) -> ScoreNet:
    """A freshly initialised net; the same seed gives the same weights (global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ScoreNet(spec)


def resolve_device(choice: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; ``"cuda"`` without a GPU is an error."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("training.device is 'cuda' but no CUDA device is available")
    return torch.device(choice)


def state_to_numpy(net: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}


def state_from_numpy(spec: NetSpec, state: dict[str, np.ndarray]) -> ScoreNet:
    """A :class:`ScoreNet` with the given weights; the keys and shapes must match ``spec``."""
    net = ScoreNet(spec)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(np.shape(v)) for k, v in state.items()}
    if expected != got:
        raise ValueError(f"state does not match the architecture {spec}: {got} vs {expected}")
    net.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})
    return net.eval()
