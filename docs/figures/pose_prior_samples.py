"""Samples from the shipped pose prior next to real held-out poses (actor mm).

Run from the repository root after `prohmr data mocap --out data/mocap/hdm05_val.npz --actors mm`:
`python docs/figures/pose_prior_samples.py` writes docs/figures/pose_prior_samples.png.
"""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import prohmr  # noqa: E402
from prohmr.body.joints import SMPL_PARENTS  # noqa: E402
from prohmr.body.model import create_body_model  # noqa: E402
from prohmr.geometry import axis_angle_to_matrix  # noqa: E402

torch.manual_seed(0)
prior = prohmr.load_model("pose_prior")
body = create_body_model()
samples = prior.sample(6, generator=torch.Generator().manual_seed(3)).rotations
held = np.load("data/mocap/hdm05_val.npz")["body_pose"]
pick = np.random.default_rng(1).choice(len(held), 6, replace=False)
real = axis_angle_to_matrix(torch.as_tensor(held[pick], dtype=torch.float32).reshape(6, 24, 3))
rows = [("pose prior samples", samples), ("held-out actor mm (real)", real)]
fig, axes = plt.subplots(2, 6, figsize=(12, 5.2))
with torch.no_grad():
    for r, (label, rot) in enumerate(rows):
        out = body(rot[:, :1], rot[:, 1:], torch.zeros(6, 10))
        for c in range(6):
            ax = axes[r, c]
            v = out.vertices[c].numpy()
            j = out.smpl_joints[c].numpy()
            ax.scatter(v[::7, 0], v[::7, 1], s=0.3, c="0.75")
            for k, p in enumerate(SMPL_PARENTS):
                if p >= 0:
                    colour = "tab:blue" if r == 0 else "tab:red"
                    ax.plot(j[[p, k], 0], j[[p, k], 1], color=colour, lw=1.5)
            ax.set_aspect("equal")
            ax.axis("off")
            lp = prior.log_prob(rot[c:c + 1]).item()
            ax.set_title(f"log p = {lp:.0f}", fontsize=8)
        axes[r, 0].text(-0.1, 0.5, label, transform=axes[r, 0].transAxes, rotation=90,
                        va="center", ha="right", fontsize=10)
fig.suptitle("Shipped pose prior: samples (top) and real held-out poses (bottom), front view", fontsize=11)
fig.tight_layout()
fig.savefig("docs/figures/pose_prior_samples.png", dpi=90)
