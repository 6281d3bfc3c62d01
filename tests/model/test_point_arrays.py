"""The array shortcuts of the pose functions (issue 18) give exactly what the plain numpy expressions give."""

from __future__ import annotations

import numpy as np
import pytest

from model.pose.joint_combinations import finite_points, smallest_used
from model.pose.joint_conventions import FIELD, OURS, conversion_matrix
from model.pose.joint_formulas import FORMULA_WEIGHTS
from model.pose.normalization import CONTIGUOUS_FROM, point_bounds

RNG = np.random.default_rng(18)
MATRICES = [conversion_matrix(FIELD, OURS), conversion_matrix(OURS, FIELD), FORMULA_WEIGHTS, np.eye(5),
            np.array([[1.0, 0, 0], [0, 0, 0], [0.5, 0.5, 0]])]  # a row that uses no point


@pytest.mark.parametrize("weights", MATRICES)
@pytest.mark.parametrize("batch", [(), (1,), (3,), (64,), (2, 5)])
@pytest.mark.parametrize("kind", ["varied", "ones", "zeros", "some zero"])
def test_smallest_used_is_the_minimum_over_the_used_points(weights, batch, kind):
    used = weights != 0
    values = {"varied": RNG.uniform(0, 1, (*batch, used.shape[1])), "ones": np.ones((*batch, used.shape[1])),
              "zeros": np.zeros((*batch, used.shape[1])),
              "some zero": RNG.choice([0.0, 0.5, 1.0], (*batch, used.shape[1]))}[kind]
    expected = np.where(used, values[..., None, :], np.inf).min(axis=-1)
    got = smallest_used(used, values)
    assert got.shape == expected.shape and np.array_equal(got, expected)
    got[...] = -1  # a fresh array, not a view of a cached one
    assert np.array_equal(smallest_used(used, values), expected)


@pytest.mark.parametrize("width", [2, 3])
def test_finite_points_is_every_coordinate_finite(width):
    points = RNG.normal(size=(40, 17, width))
    points[RNG.uniform(size=points.shape) < 0.05] = np.nan
    points[0, 0, -1] = np.inf
    np.testing.assert_array_equal(finite_points(points), np.isfinite(points).all(axis=-1))


@pytest.mark.parametrize("n", [1, CONTIGUOUS_FROM - 1, CONTIGUOUS_FROM, 64])
@pytest.mark.parametrize("masked", [False, True])
def test_point_bounds_are_the_visible_points_extremes(n, masked):
    points = RNG.uniform(-500, 500, (n, 17, 2))
    visible = RNG.uniform(size=(n, 17)) < 0.7 if masked else None
    if masked:
        visible[0] = False  # a pose with nothing visible: inf and -inf
    lo, hi = point_bounds(points, visible)
    mask = np.ones((n, 17), bool) if visible is None else visible
    np.testing.assert_array_equal(lo, np.where(mask[..., None], points, np.inf).min(axis=1))
    np.testing.assert_array_equal(hi, np.where(mask[..., None], points, -np.inf).max(axis=1))
