"""Retrieval protocols: the paper's (``paper``), Pr-VIPE's across views (``prvipe``), cross-modal recall
(``cross_modal``), and retrieval over the whole library from real cameras (``real_cameras``, with its
``oracle_floor`` and the ``calibration_metrics`` of the predicted error)."""
