"""Evaluation (SPEC section 6) on held-out clips, deterministically: one module per protocol.

    held_out.py          the held-out rows and their views (rig, random cameras, noisy 2D, detector features)
    adapters.py          the torch models as numpy encode / decode / lifters
    pose_errors.py       per-pose top-1 errors (mm), their means, the MPJPE oracle
    lifting.py           lifting MPJPE / PA-MPJPE per 2D condition, camera set-up and content
    real_cameras.py      lifting through the fixed real rig: published H36M cameras, subject moving, distorted 2D,
                         off-axis bins
    retrieval/           paper.py (the paper's protocol, clip-excluded variant, oracle floor), prvipe.py (Hit@k
                         across views), cross_modal.py (recall@1), real_cameras.py (the whole library from real
                         cameras, re-ranked, the predicted error's calibration) with oracle_floor.py and
                         calibration_metrics.py
    motion/              motion search at 0.5x, 1x, 2x: protocol.py runs queries.py, library.py, methods.py,
                         aligned_error.py and the cached oracle.py and scores them
    seed_study.py        singular-value vs pairwise-only over seeds
    images.py            image -> lift3d on the labelled photos, detector error statistics
    photo_consistency.py a known camera rotation of the photos rotates the lifted pose alike
    conventions.py       the field's h36m17 against our unihpr17, in and out
    generalisation.py    other bodies, an unseen capture, unseen motion
    checkpoints.py       the run's checkpoints and how the report names them
    run.py               evaluate_run: every section into one dict
    report/              document.py writes eval.json, eval.md and the plots, the sections in order; one module per
                         section (summary sentence, markdown, plot; nothing computed); markdown.py and figures.py
                         what they share; model_card.py the weights' model card
    commands.py          ``unihpr-build evaluate | conventions``

What a run is evaluated with (subsampling, query counts, noise, thresholds) is its config's ``EvalSettings``
(``index_builder.training.config``). Exact search is ``model.retrieval.exact_search.exact_search``. A new protocol
is one more module, called from ``run.py``, with its section in ``report/``.
Units: 3D errors in mm, NP-MPJPE unitless, 2D in normalised units (the pose box's longer half-side is 1).
"""

from index_builder.evaluation.checkpoints import unihpr_checkpoint
from index_builder.evaluation.report.document import write_report
from index_builder.evaluation.run import evaluate_run
from index_builder.training.config import EvalSettings

__all__ = ["EvalSettings", "evaluate_run", "unihpr_checkpoint", "write_report"]
