"""Feature statistics, FID, KID and mIoU against hand-computed values and direct implementations."""
import warnings

import numpy as np
import pytest
import torch

from memorygan.errors import CheckpointError
from memorygan.metrics.stats import (FeatureStats, IoUCounts, fid_from_stats, frechet_distance,
                                     kernel_inception_distance, mean_iou)


def random_cov(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


# ---------------------------------------------------------------------------------------------------- FID

def test_frechet_identical_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=6), random_cov(rng, 6)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_frechet_1d_gaussians():
    # (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2) = 4 + 4 + 9 - 12
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(5.0, abs=1e-10)
    assert frechet_distance(np.array([0.5]), np.array([[1.0]]), np.array([0.5]), np.array([[0.25]])) == \
        pytest.approx(0.25, abs=1e-10)  # (1 - 0.5)^2


def test_frechet_diagonal_and_rotation_invariance():
    m1, m2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)  # 5 + (4 + 1 + 0) = 10
    assert expected == pytest.approx(10.0)
    assert frechet_distance(m1, np.diag(s1), m2, np.diag(s2)) == pytest.approx(expected, abs=1e-9)
    # rotating both distributions by the same orthogonal matrix leaves the distance unchanged
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    got = frechet_distance(q @ m1, q @ np.diag(s1) @ q.T, q @ m2, q @ np.diag(s2) @ q.T)
    assert got == pytest.approx(expected, abs=1e-8)


def test_frechet_singular_covariances():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(5, 20)), rng.normal(size=(5, 20)) + 0.5  # fewer rows than dimensions: rank 4
    mx, sx, my, sy = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # handled (eps offset), not reported
        d = frechet_distance(mx, sx, my, sy)
    # tr sqrt(S1 S2) = sum of the square roots of the (real, non-negative) eigenvalues of S1 S2
    ev = np.clip(np.linalg.eigvals(sx @ sy).real, 0, None)
    expected = np.sum((mx - my) ** 2) + np.trace(sx) + np.trace(sy) - 2 * np.sqrt(ev).sum()
    assert d == pytest.approx(expected, rel=1e-4)


def test_frechet_shape_mismatch():
    with pytest.raises(ValueError, match="shapes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_fid_of_gaussian_feature_sets_matches_closed_form():
    """Feature rows drawn from N(m1, S1) and N(m2, S2) with non-commuting covariances: the FID of the two sets
    approaches |m1 - m2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), with tr (S1 S2)^(1/2) = sum sqrt(eig(S1 S2))."""
    rng = np.random.default_rng(3)
    d = 4
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_cov(rng, d) / d, random_cov(rng, d) / d
    assert not np.allclose(s1 @ s2, s2 @ s1)
    closed = np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.linalg.eigvals(s1 @ s2).real).sum()
    a, b = FeatureStats(), FeatureStats()
    for _ in range(10):  # 200k rows each, in batches
        a.append(rng.multivariate_normal(m1, s1, size=20_000))
        b.append(rng.multivariate_normal(m2, s2, size=20_000))
    assert fid_from_stats(a, b) == pytest.approx(closed, rel=0.02)
    # and exactly the closed form of the fitted Gaussians
    assert fid_from_stats(a, b) == pytest.approx(frechet_distance(a.mean, a.cov, b.mean, b.cov), rel=1e-12)
    assert fid_from_stats(a, a) == pytest.approx(0.0, abs=1e-8)


# ---------------------------------------------------------------------------------------------------- FeatureStats

def test_feature_stats_match_numpy_in_batches(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(103, 7)) * np.arange(1, 8) + 3.0
    st = FeatureStats(max_items=50, key="k1")
    for s in range(0, 103, 20):  # mixed numpy / torch batches
        chunk = x[s:s + 20]
        st.append(torch.from_numpy(chunk) if s % 40 else chunk)
    assert st.count == 103 and st.dim == 7
    np.testing.assert_allclose(st.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(st.cov, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(st.features, x[:50].astype(np.float32))

    path = st.save(tmp_path / "stats.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["stats.safetensors"]  # no temporary file left
    back = FeatureStats.load(path)
    assert (back.count, back.dim, back.key, back.max_items) == (103, 7, "k1", 50)
    np.testing.assert_array_equal(back.mean, st.mean)
    np.testing.assert_array_equal(back.cov, st.cov)
    np.testing.assert_array_equal(back.features, st.features)
    assert fid_from_stats(st, back) == pytest.approx(0.0, abs=1e-8)


def test_feature_stats_errors(tmp_path):
    st = FeatureStats()
    st.append(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="dimension 5, expected 4"):
        st.append(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        st.append(np.full((1, 4), np.nan))
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        FeatureStats.load(bad)
    with pytest.raises(CheckpointError, match="missing.safetensors"):
        FeatureStats.load(tmp_path / "missing.safetensors")
    from safetensors.numpy import save_file
    save_file({"sum": np.zeros(4)}, str(tmp_path / "other.safetensors"))  # a safetensors file of another kind
    with pytest.raises(CheckpointError, match="other.safetensors: not a memorygan-feature-stats file"):
        FeatureStats.load(tmp_path / "other.safetensors")


# ---------------------------------------------------------------------------------------------------- KID

def kid_double_loop(x, y):
    """Unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3, written out term by term."""
    m, d = x.shape
    k = lambda a, b: (np.dot(a, b) / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_equals_double_loop():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 4)), rng.normal(size=(9, 4)) + 0.3
    mean, std = kernel_inception_distance(x, y, num_subsets=1, max_subset_size=9)
    assert mean == pytest.approx(kid_double_loop(x, y), rel=1e-10)
    assert std == 0.0
    # with the full set in each subset every subset gives the same value (the MMD ignores the order)
    mean3, std3 = kernel_inception_distance(x, y, num_subsets=3, max_subset_size=100)
    assert mean3 == pytest.approx(mean, rel=1e-10) and std3 == pytest.approx(0.0, abs=1e-12)


def test_kid_same_distribution_near_zero_shifted_positive():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same, same_std = kernel_inception_distance(a, b, num_subsets=20, max_subset_size=200)
    shifted, _ = kernel_inception_distance(a, b + 1.0, num_subsets=20, max_subset_size=200)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 0.5 and shifted > 100 * abs(same)
    # deterministic for a seed
    assert kernel_inception_distance(a, b, 5, 100, seed=3) == kernel_inception_distance(a, b, 5, 100, seed=3)


def test_kid_is_unbiased_on_identical_distributions():
    """Over many independent pairs of samples from one distribution, the KID estimates average to 0 within a few
    standard errors (the biased V-statistic does not: it stays clearly positive), while a shifted distribution is
    far above 0."""
    rng = np.random.default_rng(7)
    m, d, pairs = 30, 8, 300
    est, biased, shifted = [], [], []
    for _ in range(pairs):
        x, y = rng.normal(size=(m, d)), rng.normal(size=(m, d))
        est.append(kernel_inception_distance(x, y, num_subsets=1, max_subset_size=m)[0])
        k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
        biased.append(k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean())
        shifted.append(kernel_inception_distance(x, y + 0.5, num_subsets=1, max_subset_size=m)[0])
    est, biased, shifted = np.array(est), np.array(biased), np.array(shifted)
    se = est.std(ddof=1) / np.sqrt(pairs)
    assert abs(est.mean()) < 3 * se
    assert biased.mean() > 10 * se + abs(est.mean())
    assert shifted.mean() > 10 * se and (shifted > 0).mean() > 0.9


# ---------------------------------------------------------------------------------------------------- mIoU

def test_miou_hand_computed():
    target = torch.tensor([[0, 0, 1, 1],
                           [0, 0, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1],
                         [0, 0, 1, 3]])
    # class 0: I=3, U=4; class 1: I=3 (target 1 at 4 pixels, pred 1 at 4), U=5; class 2 absent; class 3: I=0, U=1
    miou, per_class = mean_iou(pred, target, 4)
    assert per_class == [pytest.approx(0.75), pytest.approx(0.6), None, 0.0]
    assert miou == pytest.approx((0.75 + 0.6 + 0.0) / 3)


def test_iou_counts_accumulate_pixels_over_images():
    c = IoUCounts(2)
    c.update(torch.tensor([[0, 0, 0, 0]]), torch.tensor([[0, 0, 0, 1]]))   # class 1: I=0, U=1
    c.update(torch.tensor([[1, 1]]), torch.tensor([[1, 1]]))                # class 1: I=2, U=2
    assert c.intersection.tolist() == [3, 2] and c.union.tolist() == [4, 3]
    assert c.per_class == [pytest.approx(0.75), pytest.approx(2 / 3)]
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        c.update(torch.tensor([2]), torch.tensor([0]))
