"""Evaluation (SPEC section 6) on held-out clips, deterministically: one module per protocol.

    held_out.py          the held-out rows and their views (rig, random cameras, noisy 2D, detector features)
    adapters.py          the torch models as numpy encode / decode / lifters
    pose_errors.py       per-pose top-1 errors (mm), their means, the MPJPE oracle
    lifting.py           lifting MPJPE / PA-MPJPE per 2D condition, camera set-up and content
    real_cameras.py      the fixed real rig: published H36M cameras, subject moving, distorted 2D, off-axis bins
    retrieval_paper.py   the paper's retrieval protocol, clip-excluded variant and oracle floor
    retrieval_prvipe.py  the Pr-VIPE protocol: Hit@k at NP-MPJPE <= threshold
    retrieval_real.py    retrieval from real cameras over the whole library, re-ranked, against the oracle floor;
                         the calibration of the predicted error
    oracle_floor.py      its oracle floor: closed-form Procrustes over the gallery, exact PA-MPJPE of a shortlist
    calibration_metrics.py  Spearman's rank correlation and reliability bins of a predicted error
    alignment.py         cross-modal recall@1
    seed_study.py        singular-value vs pairwise-only over seeds
    images.py            image -> lift3d on the labelled photos, detector error statistics
    photo_consistency.py a known camera rotation of the photos rotates the lifted pose alike
    motion_search.py     motion search at 0.5x, 1x, 2x: runs the parts below and scores them
    motion_queries.py, motion_library.py, motion_methods.py, motion_alignment.py, motion_oracle.py
                         its queries, library and index, compared methods, aligned 3D error, cached oracle
    checkpoints.py       the run's checkpoints and how the report names them
    run.py               evaluate_run: every section into one dict
    report.py            eval.json, eval.md and the plots, the sections in order
    *_report.py          one report section each: summary sentence, markdown, plot (nothing computed)
    markdown.py, report_figures.py  what the sections share: tables, headings, targets; the PNG writer, bars

What a run is evaluated with (subsampling, query counts, noise, thresholds) is its config's ``EvalSettings``
(``index_builder.training.config``). Exact search is ``model.retrieval.exact_search.exact_search``. A new protocol
is one more module, called from ``run.py``.
Units: 3D errors in mm, NP-MPJPE unitless, 2D in normalised units (the pose box's longer half-side is 1).
"""

from index_builder.evaluation.checkpoints import unihpr_checkpoint
from index_builder.evaluation.report import write_report
from index_builder.evaluation.run import evaluate_run
from index_builder.training.config import EvalSettings

__all__ = ["EvalSettings", "evaluate_run", "unihpr_checkpoint", "write_report"]
