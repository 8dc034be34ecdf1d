"""The demo behind ``make demo`` / ``prohmr demo``: the library end to end on held-out data.

:func:`run_demo` uses only what ships with the package (the three pretrained models in
``prohmr/pretrained/`` and the procedural body model) and, when present, the open mocap data
for held-out poses; it runs offline in well under a minute on two CPU cores and writes
``<out>/index.html`` (plus ``report.md`` and ``metrics.json``):

1. a few synthetic images of held-out people (:mod:`prohmr.demo.scenes`), each also seen by a
   second camera;
2. the shipped ProHMR's mode and samples with their log-likelihoods;
3. keypoint fitting to noisy 2D keypoints, before and after;
4. multi-view refinement of the two views of each person against single-view fitting;
5. ProSkeleton lifting 2D skeletons to 3D hypotheses;
6. prior-only fitting with the shipped pose prior;
7. every number against the ground truth, with min-of-n curves;

and, as an appendix, the embedded body model posed and shaped
(:mod:`prohmr.demo.body_figures`). Everything is seeded: two runs report the same errors.
"""

from __future__ import annotations

from prohmr.demo.body_figures import DEMO_POSES, DEMO_SHAPES, pose_from_degrees
from prohmr.demo.runner import DemoReport, DemoSettings, load_demo_models, run_demo
from prohmr.demo.steps import DemoModels

__all__ = [
    "DEMO_POSES",
    "DEMO_SHAPES",
    "DemoModels",
    "DemoReport",
    "DemoSettings",
    "load_demo_models",
    "pose_from_degrees",
    "run_demo",
]
