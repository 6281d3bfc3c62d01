"""Retrieval algorithms in numpy. Public API:

- ``rerank``: how well a library pose explains a query (``fit_residuals``, ``rank_scores``, ``rank_order``) and
  the expected error of a result (``ErrorCurve``);
- ``sequence_alignment``: subsequence DTW (``subsequence_dtw``); ``sequence_fit``: one camera for a whole motion
  (``fit_sequences``); ``motion_search``: motion search over an index (``search_motion``, ``Segment``);
- ``exact_search``: exact k-NN (FAISS's ``knn``) for ground truth;
- ``stored_vectors``: an index's stored vectors read back by id in bulk (``StoredVectors``).

Nothing is imported here, so only ``exact_search`` and ``stored_vectors`` load FAISS.
"""
