"""CUT's patch sampler and projection head (Park et al., "Contrastive Learning for Unpaired
Image-to-Image Translation", ECCV 2020, Sec. 3.2; `PatchSampleF` of the reference code).

For each tapped encoder layer, the features at sampled spatial positions are projected by a two-layer
MLP (Linear(C, nc), ReLU, Linear(nc, nc); `mlp_sample`) or taken as they are (`sample`), then
L2-normalised as the reference does it: `x / (||x||_2 + 1e-7)` (not `F.normalize`, whose eps differs;
at CUT's initialisation the MLP outputs have norms near 1e-5, so the 1e-7 matters). The heads are
built at construction from the channels of the tapped layers (the reference builds them on the first
batch); their parameter names are the reference's (`mlp_<i>.0`, `mlp_<i>.2`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

NETF = ("mlp_sample", "sample")


def sample_patch_ids(rng: np.random.RandomState, feats: Sequence[torch.Tensor], num_patches: int) -> list[torch.Tensor]:
    """Per feature map (B, C, H, W), `num_patches` positions of the H*W (all of them if fewer): the
    first ones of `rng.permutation(H * W)`, as the reference draws them from numpy's legacy RNG.
    The same positions serve every image of the batch, and the key and query sides."""
    ids = []
    for feat in feats:
        hw = feat.shape[2] * feat.shape[3]
        ids.append(torch.as_tensor(rng.permutation(hw)[: min(num_patches, hw)], dtype=torch.long, device=feat.device))
    return ids


class PatchSampler(nn.Module):
    """(feature maps, patch ids) -> per layer (B * P, nc) L2-normalised rows, batch-major."""

    def __init__(self, channels: Sequence[int], *, netf: str = "mlp_sample", nc: int = 256) -> None:
        super().__init__()
        if netf not in NETF:
            raise ValueError(f"unknown netF {netf!r}; choose one of: {', '.join(NETF)}")
        self.channels, self.use_mlp, self.nc = tuple(channels), netf == "mlp_sample", nc
        if self.use_mlp:
            for i, c in enumerate(self.channels):
                self.add_module(f"mlp_{i}", nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)))

    def forward(self, feats: Sequence[torch.Tensor], patch_ids: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for i, (feat, ids) in enumerate(zip(feats, patch_ids, strict=True)):
            rows = feat.permute(0, 2, 3, 1).flatten(1, 2)[:, ids, :].flatten(0, 1)  # (B * P, C), batch-major
            if self.use_mlp:
                rows = getattr(self, f"mlp_{i}")(rows)
            # The reference's x.pow(2).sum(1).pow(0.5) has an infinite gradient at 0 (a row the ReLU
            # zeroed completely, likely with narrow heads), which turns into NaN; the norm's own
            # gradient is 0 there. Same values otherwise (the golden tests compare them).
            norm = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
            out.append(rows.div(norm + 1e-7))
        return out
