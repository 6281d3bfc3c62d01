"""Losses: closed-form s1 against SVD, its guards, sign awareness, and the InfoNCE modules."""

import math
import time

import pytest
import torch
import torch.nn.functional as F

from model.nn.losses import (
    DecoderLoss,
    PairwiseInfoNCE,
    SingularValueLoss,
    keypoint_2d_loss,
    largest_singular_value,
    mpjpe_loss,
    sign_aware_similarity,
    singular_value_logits,
)

SQRT3 = math.sqrt(3.0)


def _unit(g: torch.Generator, *shape: int, dtype=torch.float64) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=g, dtype=dtype), dim=-1)


def _cosines(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor):
    """x = <a, b>, y = <a, c>, z = <b, c> over the last dim."""
    return (a * b).sum(-1), (a * c).sum(-1), (b * c).sum(-1)


def _random_triples(g: torch.Generator, n: int, dim: int, spread: float) -> torch.Tensor:
    """(n, 3, dim) unit vectors scattered around a shared direction: small spread gives near-rank-one triples,
    large spread gives unrelated ones; a random sign per vector adds anti-aligned cases."""
    base = torch.randn(n, 1, dim, generator=g, dtype=torch.float64)
    noise = torch.randn(n, 3, dim, generator=g, dtype=torch.float64)
    signs = torch.where(torch.rand(n, 3, 1, generator=g, dtype=torch.float64) < 0.2, -1.0, 1.0)
    return signs * F.normalize(base + spread * noise, dim=-1)


def _special_triple(kind: str, dim: int = 6, dtype=torch.float64) -> torch.Tensor:
    """(3, dim) unit vectors at the points where the trigonometric formula breaks down."""
    eye = torch.eye(dim, dtype=dtype)
    a = F.normalize(torch.arange(1.0, dim + 1.0, dtype=dtype), dim=0)
    if kind == "coincide":
        return torch.stack([a, a, a])
    if kind == "anti_aligned":
        return torch.stack([a, a, -a])
    if kind == "orthogonal":
        return eye[:3]
    if kind == "planar_120":  # top singular value repeated: s1 = s2
        angles = torch.tensor([0.0, 2.0 * math.pi / 3.0, 4.0 * math.pi / 3.0], dtype=dtype)
        return torch.cos(angles)[:, None] * eye[0] + torch.sin(angles)[:, None] * eye[1]
    raise ValueError(kind)


SPECIAL_S1 = {"coincide": SQRT3, "anti_aligned": SQRT3, "orthogonal": 1.0, "planar_120": math.sqrt(1.5)}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dim", [3, 16, 128])
@pytest.mark.parametrize("spread", [0.01, 0.3, 3.0])
def test_s1_matches_svdvals(seed, dim, spread):
    g = torch.Generator().manual_seed(seed)
    m = _random_triples(g, 2000, dim, spread)  # (N, 3, dim)
    s = torch.linalg.svdvals(m)  # (N, 3), descending
    s1 = largest_singular_value(*_cosines(m[:, 0], m[:, 1], m[:, 2]))
    separated = s[:, 0] - s[:, 1] > 1e-3
    assert separated.float().mean() > 0.9
    torch.testing.assert_close(s1[separated], s[separated, 0], atol=1e-5, rtol=0)
    assert ((s1 >= 1.0 - 1e-12) & (s1 <= SQRT3 + 1e-12)).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_s1_gradient_matches_eigvalsh(seed):
    g = torch.Generator().manual_seed(seed)
    special = [_special_triple(kind, dim=16)[None] for kind in ("coincide", "anti_aligned")]
    m = torch.cat([_random_triples(g, 500, 16, 0.5), *special])  # (N, 3, 16)
    gram = (m @ m.transpose(1, 2)).detach().requires_grad_(True)  # (N, 3, 3)
    torch.linalg.eigvalsh(gram)[:, -1].sqrt().sum().backward()
    ref = 2.0 * torch.stack([gram.grad[:, 0, 1], gram.grad[:, 0, 2], gram.grad[:, 1, 2]], dim=-1)

    cos = torch.stack(_cosines(m[:, 0], m[:, 1], m[:, 2]), dim=-1).detach().requires_grad_(True)  # (N, 3)
    largest_singular_value(*cos.unbind(-1)).sum().backward()
    torch.testing.assert_close(cos.grad, ref, atol=1e-8, rtol=1e-6)
    # At rank one the top eigenvector is (1, 1, 1)/sqrt(3) up to signs: d(s1^2)/dx = 2/3, so ds1/dx = 1/(3 sqrt 3).
    torch.testing.assert_close(cos.grad[-2], torch.full((3,), 1.0 / (3.0 * SQRT3), dtype=torch.float64))


@pytest.mark.parametrize("kind", list(SPECIAL_S1))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_s1_finite_at_degenerate_points(kind, dtype):
    m = _special_triple(kind, dtype=dtype).requires_grad_(True)
    x, y, z = _cosines(m[0], m[1], m[2])
    s1 = largest_singular_value(x, y, z)
    sim = sign_aware_similarity(x, y, z)
    assert torch.isfinite(s1) and torch.isfinite(sim)
    assert s1.item() == pytest.approx(SPECIAL_S1[kind], abs=1e-5)
    (grad_s1,) = torch.autograd.grad(s1, m, retain_graph=True)
    (grad_sim,) = torch.autograd.grad(sim, m)
    assert torch.isfinite(grad_s1).all() and torch.isfinite(grad_sim).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_logits_and_loss_finite_at_degenerate_points(dtype):
    dim = 8
    eye = torch.eye(dim, dtype=dtype)
    a = F.normalize(torch.arange(1.0, dim + 1.0, dtype=dtype), dim=0)
    # anchor 0 meets candidate 0 coinciding, candidate 1 anti-aligned; anchor 2 meets candidate 2 orthogonal
    anchor = torch.stack([a, a, eye[0]]).requires_grad_(True)
    other1 = torch.stack([a, a, eye[1]]).requires_grad_(True)
    other2 = torch.stack([a, -a, eye[2]]).requires_grad_(True)
    logits = singular_value_logits(anchor, other1, other2)
    assert logits.shape == (3, 3) and torch.isfinite(logits).all()
    assert logits[0, 0].item() == pytest.approx(3.0, abs=1e-5)
    assert logits[0, 1].item() == pytest.approx(1.0 / 3.0, abs=1e-5)
    assert logits[2, 2].item() == pytest.approx(1.0 / 3.0, abs=1e-5)
    grads = torch.autograd.grad(logits.sum(), [anchor, other1, other2])
    assert all(torch.isfinite(gr).all() for gr in grads)

    scale = torch.tensor(10.0, dtype=dtype, requires_grad=True)
    loss = sum(SingularValueLoss(pairwise_weight=1.0)(anchor, other1, other2, scale).values())
    grads = torch.autograd.grad(loss, [anchor, other1, other2, scale])
    assert torch.isfinite(loss) and all(torch.isfinite(gr).all() for gr in grads)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_anti_aligned_triple_never_scores_as_match(seed):
    g = torch.Generator().manual_seed(seed)
    dim = 32
    a = _unit(g, dim)
    anti = sign_aware_similarity(*_cosines(a, a, -a))
    aligned = sign_aware_similarity(*_cosines(a, a, a))
    # raw s1 cannot tell them apart
    assert largest_singular_value(*_cosines(a, a, -a)) == pytest.approx(largest_singular_value(*_cosines(a, a, a)))
    assert aligned.item() == pytest.approx(3.0) and anti.item() == pytest.approx(1.0 / 3.0)

    # same-signed candidates: non-negative vectors have non-negative cosines
    same = F.normalize(torch.randn(1000, 3, dim, generator=g, dtype=torch.float64).abs(), dim=-1)
    sims = sign_aware_similarity(*_cosines(same[:, 0], same[:, 1], same[:, 2]))
    assert (anti < sims).all() and (sims <= aligned).all()

    # the same in a logits row: anchor a against (a, a) matched, (a, -a) anti-aligned, and random candidates
    others = _unit(g, 30, 2, dim)
    other1 = torch.cat([a[None], a[None], others[:, 0]])
    other2 = torch.cat([a[None], -a[None], others[:, 1]])
    row = singular_value_logits(a[None], other1, other2)[0]
    assert row.argmax() == 0 and row[1] < row[0] - 2.0
    assert (row[1] <= row[2:].max()).item()


def test_two_vector_ranking():
    """For two vectors a, b with cosine c, raw s1 ranks candidates by |c| and the sign-aware form by c.

    Two routes reach the two-vector case. Directly, s1([a; b])^2 = 1 + |c|. Through the three-vector formula,
    repeat a vector (third = a, as when two modalities embed identically): [a; b; a] spans the same rows as
    [a; b], its cosines are (c, 1, c) and s1^2 = (3 + sqrt(1 + 8c^2)) / 2, again increasing in |c|. Setting the
    third vector orthogonal instead, cosines (c, 0, 0), also gives s1^2 = 1 + |c|, but the sign factor would then
    weigh a vector that is not there, so the sign-aware form is checked on the repeated-vector route.
    """
    g = torch.Generator().manual_seed(0)
    dim = 16
    a = _unit(g, dim)
    c = torch.rand(40, generator=g, dtype=torch.float64) * 1.98 - 0.99
    u = F.normalize(torch.randn(40, dim, generator=g, dtype=torch.float64), dim=-1)
    u = F.normalize(u - (u @ a)[:, None] * a, dim=-1)  # unit, orthogonal to a
    b = c[:, None] * a + torch.sqrt(1.0 - c * c)[:, None] * u  # (40, dim), <a, b> = c

    s1_two = torch.linalg.svdvals(torch.stack([a.expand_as(b), b], dim=1))[:, 0]  # (40,)
    torch.testing.assert_close(s1_two**2, 1.0 + c.abs())
    one = torch.ones_like(c)
    s1_three = largest_singular_value(c, one, c)
    torch.testing.assert_close(s1_three**2, (3.0 + torch.sqrt(1.0 + 8.0 * c * c)) / 2.0)
    repeated = torch.stack([a.expand_as(b), b, a.expand_as(b)], dim=1)  # (40, 3, dim)
    torch.testing.assert_close(s1_three, torch.linalg.svdvals(repeated)[:, 0])
    torch.testing.assert_close(largest_singular_value(c, 0 * c, 0 * c), s1_two)

    by_abs, by_cos = torch.argsort(c.abs()), torch.argsort(c)
    assert (s1_two[by_abs].diff() > 0).all() and (s1_three[by_abs].diff() > 0).all()
    assert not (s1_three[by_cos].diff() > 0).all()
    assert (sign_aware_similarity(c, one, c)[by_cos].diff() > 0).all()


def _slow_logits(anchor, other1, other2):
    """Per-pair reference: svdvals of the stacked 3 x D matrix, times the squared norm of the mean vector."""
    rows = []
    for i in range(anchor.shape[0]):
        row = []
        for j in range(other1.shape[0]):
            m = torch.stack([anchor[i], other1[j], other2[j]])
            s1 = torch.linalg.svdvals(m)[0]
            row.append(s1**2 * m.mean(dim=0).square().sum())
        rows.append(torch.stack(row))
    return torch.stack(rows)


@pytest.mark.parametrize("seed", [0, 1])
def test_logits_match_slow_reference(seed):
    g = torch.Generator().manual_seed(seed)
    dim = 16
    base = torch.randn(5, dim, generator=g, dtype=torch.float64)

    def noisy():
        return base + 0.5 * torch.randn(5, dim, generator=g, dtype=torch.float64)

    # 4 anchors, 5 candidates, one modality flipped; normalised inside the graph so that both paths see the
    # same (tangential) gradient: the closed form assumes unit rows, svdvals does not
    leaves = [noisy()[:4].requires_grad_(True), noisy().requires_grad_(True), (-noisy()).requires_grad_(True)]
    weights = torch.randn(4, 5, generator=g, dtype=torch.float64)

    fast = singular_value_logits(*[F.normalize(t, dim=-1) for t in leaves])
    slow = _slow_logits(*[F.normalize(t, dim=-1) for t in leaves])
    torch.testing.assert_close(fast, slow, atol=1e-10, rtol=0)
    grad_fast = torch.autograd.grad((weights * fast).sum(), leaves)
    grad_slow = torch.autograd.grad((weights * slow).sum(), leaves)
    for gf, gs in zip(grad_fast, grad_slow):
        torch.testing.assert_close(gf, gs, atol=1e-8, rtol=1e-6)


def _modalities(g: torch.Generator, batch: int = 64, dim: int = 32, noise: float = 0.3):
    """Three noisy views of one latent per row: (batch, dim) float32, L2-normalised."""
    latent = torch.randn(batch, dim, generator=g)
    return [F.normalize(latent + noise * torch.randn(batch, dim, generator=g), dim=-1) for _ in range(3)]


@pytest.mark.parametrize(
    "loss_fn",
    [PairwiseInfoNCE(), SingularValueLoss(), SingularValueLoss(pairwise_weight=1.0)],
    ids=["pairwise", "singular_value", "combined"],
)
@pytest.mark.parametrize("shuffled", [0, 1, 2])
def test_infonce_lower_for_aligned_batches(loss_fn, shuffled):
    g = torch.Generator().manual_seed(0)
    embeddings = _modalities(g)
    scale = torch.tensor(1.0 / 0.07)
    aligned = sum(loss_fn(*embeddings, scale).values())
    perm = torch.randperm(embeddings[0].shape[0], generator=g)
    embeddings[shuffled] = embeddings[shuffled][perm]
    mismatched = sum(loss_fn(*embeddings, scale).values())
    assert aligned < 0.5 * mismatched


def test_pairwise_symmetric_and_missing_modality():
    g = torch.Generator().manual_seed(0)
    image, pose2d, pose3d = _modalities(g)
    scale = torch.tensor(20.0)
    loss = PairwiseInfoNCE()
    only = loss(None, pose2d, pose3d, scale)
    assert list(only) == ["infonce_pose2d_pose3d"]
    swapped = loss(None, pose3d, pose2d, scale)
    torch.testing.assert_close(only["infonce_pose2d_pose3d"], swapped["infonce_pose2d_pose3d"])
    assert list(loss(image, None, pose3d, scale)) == ["infonce_image_pose3d"]

    full = loss(image, pose2d, pose3d, scale)
    assert list(full) == ["infonce_image_pose2d", "infonce_image_pose3d", "infonce_pose2d_pose3d"]
    # each term is its share of the mean over pairs
    torch.testing.assert_close(full["infonce_pose2d_pose3d"] * 3.0, only["infonce_pose2d_pose3d"])
    with pytest.raises(AssertionError):
        loss(None, None, pose3d, scale)
    with pytest.raises(AssertionError):
        loss(image[:10], pose2d, None, scale)


def test_singular_value_terms_and_weights():
    g = torch.Generator().manual_seed(0)
    embeddings = _modalities(g)
    scale = torch.tensor(10.0)
    sv = SingularValueLoss()(*embeddings, scale)
    assert list(sv) == ["sv_anchor_image", "sv_anchor_pose2d", "sv_anchor_pose3d"]
    combined = SingularValueLoss(singular_value_weight=2.0, pairwise_weight=0.5)(*embeddings, scale)
    pairwise = PairwiseInfoNCE()(*embeddings, scale)
    expected = 2.0 * sum(sv.values()) + 0.5 * sum(pairwise.values())
    torch.testing.assert_close(sum(combined.values()), expected)

    # anchor image: row i against (pose2d_j, pose3d_j), InfoNCE over j
    image, pose2d, pose3d = embeddings
    logits = scale * singular_value_logits(image, pose2d, pose3d)
    ce = F.cross_entropy(logits, torch.arange(logits.shape[0]))
    torch.testing.assert_close(sv["sv_anchor_image"], ce / 3.0)


def test_sign_aware_similarity_range():
    g = torch.Generator().manual_seed(0)
    m = _random_triples(g, 5000, 4, 1.0)
    x, y, z = _cosines(m[:, 0], m[:, 1], m[:, 2])
    sim = sign_aware_similarity(x, y, z)
    assert (sim >= -1e-12).all() and (sim <= 3.0 + 1e-12).all()
    # the gate |mean|^2 never exceeds s1^2 / 3 (Rayleigh quotient at the all-ones direction)
    gate = (3.0 + 2.0 * (x + y + z)) / 9.0
    assert (gate <= largest_singular_value(x, y, z) ** 2 / 3.0 + 1e-12).all()


def test_mpjpe_loss():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(4, 17, 3, generator=g) * 200.0
    offset = torch.tensor([3.0, 4.0, 0.0])
    assert mpjpe_loss(target + offset, target).item() == pytest.approx(5.0, rel=1e-5)
    pred = target.clone().requires_grad_(True)
    loss = mpjpe_loss(pred, target)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(pred.grad).all()
    with pytest.raises(AssertionError):
        mpjpe_loss(target[:, :16], target)


def test_keypoint_2d_loss_masks_invisible_joints():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 17, 2, generator=g)
    pred = target + torch.tensor([0.03, 0.04])
    visible = torch.ones(2, 17, dtype=torch.bool)
    visible[0, 5] = False
    pred[0, 5] = 1e6  # a missing joint with garbage: must not count
    assert keypoint_2d_loss(pred, target, visible).item() == pytest.approx(0.05, rel=1e-4)
    assert keypoint_2d_loss(target + torch.tensor([0.03, 0.04]), target).item() == pytest.approx(0.05, rel=1e-4)
    nothing = keypoint_2d_loss(pred, target, torch.zeros(2, 17))
    assert nothing.item() == 0.0


def test_decoder_loss_terms():
    g = torch.Generator().manual_seed(0)
    target3d, target2d = torch.randn(2, 17, 3, generator=g), torch.rand(2, 17, 2, generator=g)
    assert list(DecoderLoss()(target3d + 1.0, target3d)) == ["mpjpe_loss"]
    terms = DecoderLoss(keypoint_2d_weight=100.0)(target3d, target3d, target2d + 0.1, target2d)
    assert list(terms) == ["mpjpe_loss", "keypoint_2d_loss"]
    assert terms["keypoint_2d_loss"].item() == pytest.approx(100.0 * 0.1 * math.sqrt(2.0), rel=1e-4)


def test_forward_backward_time_b256():
    """One forward + backward of the full contrastive loss at B = 256, D = 128 (printed; loose ceiling)."""
    g = torch.Generator().manual_seed(0)
    raw = [torch.randn(256, 128, generator=g, requires_grad=True) for _ in range(3)]
    log_scale = torch.tensor(math.log(1.0 / 0.07), requires_grad=True)
    timings = {}
    losses = {"pairwise": PairwiseInfoNCE(), "singular_value+pairwise": SingularValueLoss(pairwise_weight=1.0)}
    for name, loss_fn in losses.items():
        runs = []
        for _ in range(6):  # the first run warms up; the minimum of the rest resists a busy machine
            start = time.perf_counter()
            loss = sum(loss_fn(*[F.normalize(r, dim=-1) for r in raw], log_scale.exp()).values())
            loss.backward()
            runs.append(time.perf_counter() - start)
        timings[name] = min(runs[1:])
        assert all(torch.isfinite(r.grad).all() for r in raw)
    print("\nforward+backward at B=256, D=128: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in timings.items()))
    assert timings["singular_value+pairwise"] < 2.0
