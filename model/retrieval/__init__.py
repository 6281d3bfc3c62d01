"""Retrieval algorithms in numpy: how well a library pose explains a query (re-ranking and its expected error),
subsequence alignment of motions, motion search over an index, and exact k-NN (FAISS) for ground truth."""

from model.retrieval.exact_search import exact_search
from model.retrieval.motion_search import Segment, search_motion
from model.retrieval.rerank import ErrorCurve, fit_residuals, rank_order, rank_scores
from model.retrieval.sequence_alignment import subsequence_dtw
from model.retrieval.sequence_fit import fit_sequences

__all__ = ["ErrorCurve", "Segment", "exact_search", "fit_residuals", "fit_sequences", "rank_order", "rank_scores",
           "search_motion", "subsequence_dtw"]
