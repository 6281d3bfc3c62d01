"""Training losses: pairwise InfoNCE, the singular-value loss, and the decoder losses.

Contrastive losses follow open_clip: they are ``nn.Module`` s, the learned temperature lives in the model and is
passed to ``forward`` already exponentiated (``logit_scale = model.logit_scale.exp()``), and ``forward`` returns a
dict of named terms whose values are each term's weighted share of the loss, so ``sum(out.values())`` is the
training loss.

The singular-value loss (SPEC section 5). For unit vectors a, b, c with cosines x = <a, b>, y = <a, c>,
z = <b, c>, stack M = [a; b; c] (3 x D). The squared singular values of M are the eigenvalues of the Gram matrix
G = M M^T = I + [[0, x, y], [x, 0, z], [y, z, 0]], i.e. 1 + mu for the roots mu of
mu^3 - (x^2 + y^2 + z^2) mu - 2xyz = 0. They sum to 3, so s1^2 lies in [1, 3], and s1^2 = 3 (s2 = s3 = 0)
exactly when M has rank one. All of it is computed from cosines, so a batch needs only (B, B) cosine matrices,
not a batched SVD.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model.pose.features import MODALITIES

# Below this the top root is (nearly) a repeated eigenvalue, where it has no derivative; the clamp turns the
# 0/0 of the implicit gradient into a bounded subgradient.
_ROOT_GAP_EPS = 1e-6



def _largest_gram_eigenvalue(x: Tensor, y: Tensor, z: Tensor) -> Tensor:
    """Largest eigenvalue s1^2 = 1 + mu_max of the Gram matrix of three unit vectors with cosines x, y, z.

    x, y, z: broadcastable float tensors of cosines in [-1, 1]. Returns their broadcast shape, values in [1, 3].

    The value comes from the trigonometric (Viete) root of the depressed cubic, computed without autograd so
    its guards (a clamped arccos argument, a floored denominator) cannot put NaN into the graph: autograd through
    that formula gives 0 * inf where two roots meet, which happens at a = b = c and (a, a, -a) (the two small
    roots coincide) and at mutually orthogonal vectors (all three do). The gradient comes from the implicit
    function theorem on f(mu) = mu^3 - p mu - q = 0: dmu = -(df at fixed mu) / f'(mu), carried by a term that is
    zero in value. It is exact wherever the top root is simple, including a = b = c and (a, a, -a), where
    f'(mu_max) = 9. First-order only: second derivatives are not those of mu_max.
    """
    p = x * x + y * y + z * z
    q = 2.0 * x * y * z
    with torch.no_grad():
        # float64 because the formula (not the eigenvalue) is ill-conditioned where the top root is double:
        # it loses about half the digits there, 1e-4 in float32.
        xd, yd, zd = x.double(), y.double(), z.double()
        pd = xd * xd + yd * yd + zd * zd
        m = torch.sqrt(pd / 3.0)
        # |xyz| <= m^3 (AM-GM), so the argument is in [-1, 1] up to rounding; the floor only bites at m ~ 0.
        m3 = (m * m * m).clamp_min(torch.finfo(m.dtype).tiny)
        cos3theta = (xd * yd * zd / m3).clamp(-1.0, 1.0)
        mu0 = (2.0 * m * torch.cos(torch.arccos(cos3theta) / 3.0)).clamp_min(0.0)  # roots sum to 0: max >= 0
        slope = (3.0 * mu0 * mu0 - pd).clamp_min(_ROOT_GAP_EPS)  # f'(mu_max) >= 0 at the largest root
        mu0, slope = mu0.to(p.dtype), slope.to(p.dtype)
    f = mu0 * mu0 * mu0 - p * mu0 - q
    mu = mu0 - (f - f.detach()) / slope
    return 1.0 + mu


def largest_singular_value(x: Tensor, y: Tensor, z: Tensor) -> Tensor:
    """Largest singular value s1 of M = [a; b; c] for unit vectors with cosines x = <a, b>, y = <a, c>, z = <b, c>.

    x, y, z: broadcastable float tensors of cosines in [-1, 1]. Returns their broadcast shape, values in
    [1, sqrt(3)]; sqrt(3) exactly at rank one. Finite values and gradients everywhere, including coinciding,
    anti-aligned and orthogonal vectors. Blind to sign: s1(a, a, -a) == s1(a, a, a).
    """
    return torch.sqrt(_largest_gram_eigenvalue(x, y, z))


def sign_aware_similarity(x: Tensor, y: Tensor, z: Tensor) -> Tensor:
    """Sign-aware triple similarity s1^2 * |(a + b + c) / 3|^2 for unit vectors with cosines x, y, z.

    x, y, z: broadcastable float tensors of cosines in [-1, 1]. Returns their broadcast shape, values in [0, 3].

    s1^2 rewards rank one whatever the signs. The factor |mean|^2 = (3 + 2(x + y + z)) / 9 is in [0, 1]: 1 only
    when a = b = c, 1/9 for (a, a, -a), 0 when the three cancel. It is the Rayleigh quotient of G at the
    all-ones direction, divided by 3, so it never exceeds s1^2 / 3 and the product is 3 exactly at a = b = c
    (the maximum, equal to s1^2 there). Why this form:
      - smooth and cheap: one polynomial factor on top of s1^2, no extra eigenvector or sign test;
      - (a, a, -a) scores 1/3, like an unrelated (orthogonal) triple, against 3 for a match;
      - a product (not a sum) so that the gate can veto: a sum would leave (a, a, -a) above unrelated triples;
      - for two vectors (c = a) it is increasing in cos(a, b) while s1 alone follows |cos(a, b)|;
      - it keeps the range of s1^2, [0, 3], close to the cosine logits' [-1, 1], so one learned scale can serve
        both when the pairwise terms are added.
    A log form would send logits to -inf when a + b + c = 0 and has a 1 / |mean|^2 gradient.
    """
    return _largest_gram_eigenvalue(x, y, z) * (3.0 + 2.0 * (x + y + z)) / 9.0


def singular_value_logits(anchor: Tensor, other1: Tensor, other2: Tensor) -> Tensor:
    """Sign-aware similarity between each anchor and each candidate's pair of other-modality embeddings.

    anchor: (B, D) float, L2-normalised. other1, other2: (N, D) float, L2-normalised; row j of both is
    candidate j. Returns (B, N): [i, j] = sign_aware_similarity of (anchor_i, other1_j, other2_j), unscaled.
    """
    assert anchor.ndim == 2 and other1.ndim == 2, f"expected (B, D) and (N, D), got {anchor.shape}, {other1.shape}"
    assert other1.shape == other2.shape, f"candidate shapes differ: {other1.shape} vs {other2.shape}"
    assert anchor.shape[1] == other1.shape[1], f"dims differ: {anchor.shape[1]} vs {other1.shape[1]}"
    x = anchor @ other1.T  # (B, N)
    y = anchor @ other2.T  # (B, N)
    z = (other1 * other2).sum(dim=-1)[None, :]  # (1, N): the candidate's own cosine, same for every anchor
    return sign_aware_similarity(x, y, z)


def _infonce(logits: Tensor) -> Tensor:
    """Cross-entropy over candidates with the match on the diagonal. logits: (B, B)."""
    labels = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, labels)


def _check_embeddings(embeddings: dict[str, Tensor]) -> None:
    shapes = {name: tuple(e.shape) for name, e in embeddings.items()}
    assert all(len(s) == 2 for s in shapes.values()), f"expected (B, D) embeddings, got {shapes}"
    assert len(set(shapes.values())) == 1, f"embedding shapes differ: {shapes}"


class PairwiseInfoNCE(nn.Module):
    """Symmetric InfoNCE on every pair of the modalities given: (image, 2D), (image, 3D), (2D, 3D).

    Arguments:
        pairwise_weight: multiplies the mean over pairs of the symmetric InfoNCE.
    """

    def __init__(self, pairwise_weight: float = 1.0):
        super().__init__()
        self.pairwise_weight = pairwise_weight

    def pairwise_terms(self, embeddings: dict[str, Tensor], logit_scale: Tensor) -> dict[str, Tensor]:
        names = [m for m in MODALITIES if m in embeddings]
        pairs = [(u, v) for k, u in enumerate(names) for v in names[k + 1 :]]
        terms = {}
        for u, v in pairs:
            logits = logit_scale * embeddings[u] @ embeddings[v].T  # (B, B): u_i against v_j
            loss = (_infonce(logits) + _infonce(logits.T)) / 2.0
            terms[f"infonce_{u}_{v}"] = self.pairwise_weight * loss / len(pairs)
        return terms

    def forward(
        self,
        image: Tensor | None,
        pose2d: Tensor | None,
        pose3d: Tensor | None,
        logit_scale: Tensor,
    ) -> dict[str, Tensor]:
        """image, pose2d, pose3d: (B, D) float32, L2-normalised, row i of each from the same pose; None for an
        absent modality (at least two present). logit_scale: () float, already exponentiated.

        Returns {"infonce_<u>_<v>": weighted share} for each present pair; the values sum to the loss.
        """
        given = {"image": image, "pose2d": pose2d, "pose3d": pose3d}
        embeddings = {name: e for name, e in given.items() if e is not None}
        assert len(embeddings) >= 2, f"need at least two modalities, got {sorted(embeddings)}"
        _check_embeddings(embeddings)
        return self.pairwise_terms(embeddings, logit_scale)


class SingularValueLoss(PairwiseInfoNCE):
    """InfoNCE over candidates j on the sign-aware singular-value similarity of (anchor_i, others_j), for each
    anchor modality in turn, optionally plus the pairwise terms.

    Anchor image: candidates are (pose2d_j, pose3d_j); anchor pose2d: (image_j, pose3d_j); anchor pose3d:
    (image_j, pose2d_j).

    Arguments:
        singular_value_weight: multiplies the mean over the three anchors.
        pairwise_weight: multiplies the PairwiseInfoNCE mean; 0 leaves those terms out.
    """

    def __init__(self, singular_value_weight: float = 1.0, pairwise_weight: float = 0.0):
        super().__init__(pairwise_weight=pairwise_weight)
        self.singular_value_weight = singular_value_weight

    def forward(self, image: Tensor, pose2d: Tensor, pose3d: Tensor, logit_scale: Tensor) -> dict[str, Tensor]:
        """image, pose2d, pose3d: (B, D) float32, L2-normalised, row i of each from the same pose; all three
        required. logit_scale: () float, already exponentiated.

        Returns {"sv_anchor_<m>": weighted share} for each anchor modality m, then the "infonce_<u>_<v>" terms
        when pairwise_weight != 0; the values sum to the loss.
        """
        embeddings = {"image": image, "pose2d": pose2d, "pose3d": pose3d}
        _check_embeddings(embeddings)
        terms = {}
        for anchor in MODALITIES:
            other1, other2 = (embeddings[m] for m in MODALITIES if m != anchor)
            logits = logit_scale * singular_value_logits(embeddings[anchor], other1, other2)  # (B, B)
            terms[f"sv_anchor_{anchor}"] = self.singular_value_weight * _infonce(logits) / len(MODALITIES)
        if self.pairwise_weight != 0.0:
            terms.update(self.pairwise_terms(embeddings, logit_scale))
        return terms


def mpjpe_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean per-joint position error: Euclidean distance per joint, averaged over joints and batch.

    pred, target: (B, J, 3) float32, mm, root-relative. Returns () float32, mm.
    """
    assert pred.shape == target.shape, f"shape mismatch: {pred.shape} vs {target.shape}"
    assert pred.ndim == 3 and pred.shape[-1] == 3, f"expected (B, J, 3), got {pred.shape}"
    return torch.linalg.vector_norm(pred - target, dim=-1).mean()


def keypoint_2d_loss(pred: Tensor, target: Tensor, visible: Tensor | None = None) -> Tensor:
    """Mean per-joint 2D error over visible joints: the 2D decoder loss, or a reprojection loss when the caller
    projects predicted 3D into the target's normalised frame.

    pred, target: (B, J, 2) float32, centre- and scale-normalised coordinates. visible: (B, J) bool or float
    weights in [0, 1] (None: all visible). Returns () float32 in normalised units; 0 when nothing is visible.
    """
    assert pred.shape == target.shape, f"shape mismatch: {pred.shape} vs {target.shape}"
    assert pred.ndim == 3 and pred.shape[-1] == 2, f"expected (B, J, 2), got {pred.shape}"
    error = torch.linalg.vector_norm(pred - target, dim=-1)  # (B, J)
    if visible is None:
        return error.mean()
    assert visible.shape == error.shape, f"visible must be {tuple(error.shape)}, got {tuple(visible.shape)}"
    weight = visible.to(error.dtype)
    # Missing joints carry arbitrary target values: weight them out rather than average them in.
    return (weight * error).sum() / weight.sum().clamp_min(1.0)


class DecoderLoss(nn.Module):
    """Decoder losses for the second training step: MPJPE on 3D, optionally the 2D keypoint loss.

    Arguments:
        mpjpe_weight: multiplies mpjpe_loss (mm).
        keypoint_2d_weight: multiplies keypoint_2d_loss (normalised units, so about 1e3 smaller than mm).
    """

    def __init__(self, mpjpe_weight: float = 1.0, keypoint_2d_weight: float = 0.0):
        super().__init__()
        self.mpjpe_weight = mpjpe_weight
        self.keypoint_2d_weight = keypoint_2d_weight

    def forward(
        self,
        pred3d: Tensor,
        target3d: Tensor,
        pred2d: Tensor | None = None,
        target2d: Tensor | None = None,
        visible: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """pred3d, target3d: (B, J, 3) float32, mm, root-relative. pred2d, target2d: (B, J, 2) float32,
        normalised, or None to skip the 2D term. visible: (B, J) bool or float, or None.

        Returns {"mpjpe_loss", and "keypoint_2d_loss" when 2D is given}: weighted terms that sum to the loss.
        """
        terms = {"mpjpe_loss": self.mpjpe_weight * mpjpe_loss(pred3d, target3d)}
        if pred2d is not None and target2d is not None and self.keypoint_2d_weight != 0.0:
            terms["keypoint_2d_loss"] = self.keypoint_2d_weight * keypoint_2d_loss(pred2d, target2d, visible)
        return terms
