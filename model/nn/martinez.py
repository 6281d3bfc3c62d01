"""The Martinez et al. 2017 lifter, the baseline UniHPR's lifting is measured against.

Linear(2J -> 1024), two residual blocks of [Linear, BatchNorm, ReLU, Dropout] x 2, Linear(1024 -> 3(J-1));
about 4.3M parameters at J = 17. Weights are capped to unit max-norm per output unit after every step
(``apply_max_norm``), as in the authors' code. Trained with Adam 1e-3 and exponential decay.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from model.nn.config import MartinezConfig
from model.pose.units import MM_PER_M


def _layer(width: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout))


class MartinezLifter(nn.Module):
    def __init__(self, config: MartinezConfig):
        super().__init__()
        self.config = config
        j = config.num_joints
        self.inp = nn.Sequential(nn.Linear(2 * j, config.width), nn.BatchNorm1d(config.width), nn.ReLU(),
                                 nn.Dropout(config.dropout))
        self.blocks = nn.ModuleList(
            nn.Sequential(_layer(config.width, config.dropout), _layer(config.width, config.dropout))
            for _ in range(config.blocks)
        )
        self.out = nn.Linear(config.width, 3 * (j - 1))

    def forward(self, keypoints: Tensor) -> Tensor:
        """keypoints: (B, 17, 2) normalised 2D -> (B, 17, 3) mm, root-relative camera frame, pelvis = 0."""
        B, J, _ = keypoints.shape
        x = self.inp(keypoints.reshape(B, J * 2))
        for block in self.blocks:
            x = x + block(x)
        rest = self.out(x).reshape(B, J - 1, 3) * MM_PER_M
        return torch.cat([rest.new_zeros(B, 1, 3), rest], dim=1)

    @torch.no_grad()
    def apply_max_norm(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                module.weight.copy_(torch.renorm(module.weight, p=2, dim=0, maxnorm=self.config.max_norm))
