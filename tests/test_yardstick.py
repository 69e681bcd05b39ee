"""The sample-quality yardstick: the Fréchet distance (against scipy and the closed form), the
class-coverage entropy (hand-computed), and the classifier (deterministic, cached, and able to
tell real images from noise)."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from genmodels.data.images import ImageSplits, load_digits
from genmodels.metrics import (class_coverage_entropy, frechet_distance,
                               frechet_distance_from_features, gaussian_stats, get_yardstick,
                               sqrtm_psd)
from genmodels.metrics import yardstick as ys_mod

pytestmark = [pytest.mark.gan, pytest.mark.diffusion, pytest.mark.ddpm, pytest.mark.vae]  # the yardstick serves every image generator


def _random_psd(d, gen, rank=None):
    a = torch.randn(d, rank or d, generator=gen, dtype=torch.float64)
    return a @ a.T / (rank or d)


@pytest.mark.parametrize("d", [1, 3, 16])
def test_sqrtm_psd_matches_scipy_and_squares_back(d, gen):
    a = _random_psd(d, gen)
    root = sqrtm_psd(a)
    ref = scipy.linalg.sqrtm(a.numpy())
    np.testing.assert_allclose(root.numpy(), np.real(ref), atol=1e-10)
    torch.testing.assert_close(root @ root, a, atol=1e-10, rtol=0)
    assert torch.allclose(root, root.T)


def test_sqrtm_psd_of_a_singular_matrix_is_finite(gen):
    a = _random_psd(6, gen, rank=2)                      # rank 2: four zero eigenvalues
    root = sqrtm_psd(a)
    assert torch.isfinite(root).all()
    torch.testing.assert_close(root @ root, a, atol=1e-8, rtol=0)


def test_frechet_distance_closed_form_for_diagonal_gaussians(gen):
    # Commuting (diagonal) covariances: FD = ‖μ₁ − μ₂‖² + Σ_i (√a_i − √b_i)².
    mu1, mu2 = torch.randn(5, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)
    a, b = torch.rand(5, generator=gen, dtype=torch.float64) + 0.1, torch.rand(5, generator=gen, dtype=torch.float64) + 0.1
    expected = ((mu1 - mu2) ** 2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum()
    got = frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b))
    assert abs(float(got) - float(expected)) < 1e-12


def test_frechet_distance_matches_scipy_formula_for_general_gaussians(gen):
    d = 8
    s1, s2 = _random_psd(d, gen), _random_psd(d, gen)
    mu1, mu2 = torch.randn(d, generator=gen, dtype=torch.float64), torch.randn(d, generator=gen, dtype=torch.float64)
    covmean = np.real(scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()))   # the usual FID recipe
    expected = float(((mu1 - mu2) ** 2).sum()) + np.trace(s1.numpy() + s2.numpy() - 2 * covmean)
    got = frechet_distance(mu1, s1, mu2, s2)
    assert got.dtype == torch.float64
    assert abs(float(got) - expected) < 1e-9
    # a distance: symmetric, zero on identical Gaussians
    assert abs(float(frechet_distance(mu2, s2, mu1, s1)) - expected) < 1e-9
    assert float(frechet_distance(mu1, s1, mu1, s1)) < 1e-9


def test_frechet_distance_from_samples_converges_to_the_closed_form():
    # Monte Carlo: Gaussians fitted to 200k samples of N(0, I) and N(m, diag(4)) in 2-D.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200_000, 2, generator=g, dtype=torch.float64)
    y = torch.tensor([1.0, -2.0], dtype=torch.float64) + 2 * torch.randn(200_000, 2, generator=g, dtype=torch.float64)
    expected = 1 + 4 + 2 * (1 - 2) ** 2                # ‖m‖² + Σ (1 − 2)²
    assert abs(float(frechet_distance_from_features(x, y)) - expected) < 0.1
    mu, sigma = gaussian_stats(x[:3])
    torch.testing.assert_close(sigma, torch.from_numpy(np.cov(x[:3].numpy().T)))


def test_frechet_distance_rejects_bad_arguments(gen):
    s = _random_psd(3, gen)
    with pytest.raises(ValueError, match="mu2"):
        frechet_distance(torch.zeros(3, dtype=torch.float64), s, torch.zeros(4, dtype=torch.float64), s)
    with pytest.raises(ValueError, match="sigma1"):
        frechet_distance(torch.zeros(3), torch.randn(3, 3, generator=gen), torch.zeros(3), s.float())
    with pytest.raises(ValueError, match="a"):
        sqrtm_psd(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="features"):
        gaussian_stats(torch.zeros(1, 3))


def test_class_coverage_entropy_by_hand():
    assert class_coverage_entropy(torch.arange(10).repeat(3), 10) == pytest.approx(math.log(10), abs=1e-12)
    assert class_coverage_entropy(torch.full((50,), 3), 10) == 0.0
    # histogram (3, 1) over 4 items: −(¾ ln ¾ + ¼ ln ¼)
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert class_coverage_entropy(torch.tensor([0, 0, 0, 2]), 3) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="labels"):
        class_coverage_entropy(torch.zeros(3), 10)


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_yardstick_real_vs_real_is_far_below_noise_and_a_repeated_image(digits):
    ys = get_yardstick(digits)                           # the cached one every experiment uses
    assert ys.accuracy > 0.9
    real_vs_real = ys.fd(digits.val, digits.test)        # two held-out real splits, 270 each
    noise = ys.fd(torch.rand(digits.test.shape, generator=torch.Generator().manual_seed(0)), digits.test)
    repeated = ys.fd(digits.train[:1].expand_as(digits.test).contiguous(), digits.test)
    assert real_vs_real < 0.1 * noise and real_vs_real < 0.1 * repeated
    # coverage: the real test split covers the ten classes; one repeated image covers one
    assert ys.class_entropy(digits.test) > 0.95 * math.log(10)
    assert ys.class_entropy(digits.train[:1].expand(50, -1, -1, -1)) == 0.0
    with pytest.raises(ValueError, match="fake"):
        ys.score(torch.rand(10, 1, 28, 28), digits.test)


def test_yardstick_is_deterministic_and_cached(digits, tmp_path, monkeypatch):
    # a small subset named differently gets the default (short) recipe: quick to train twice
    small = ImageSplits(digits.train[:256], digits.train_labels[:256], digits.val, digits.val_labels,
                        digits.test, digits.test_labels, 10, "digits_subset")
    monkeypatch.setattr(ys_mod, "_MEMO", {})
    a = get_yardstick(small, cache_dir=tmp_path / "a", verbose=False)
    b = get_yardstick(small, cache_dir=tmp_path / "b", verbose=False)
    for (ka, va), (kb, vb) in zip(a.net.state_dict().items(), b.net.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert a.path.exists() and a.path.parent == tmp_path / "a" and a.path.name.startswith("digits_subset-")
    monkeypatch.setattr(ys_mod, "_MEMO", {})
    monkeypatch.setattr(ys_mod, "_train", lambda *args: pytest.fail("trained again despite the cache"))
    c = get_yardstick(small, cache_dir=tmp_path / "a", verbose=False)
    torch.testing.assert_close(c.features(digits.test), a.features(digits.test), rtol=0, atol=0)
    # another seed is another classifier, in another file
    monkeypatch.undo()
    monkeypatch.setattr(ys_mod, "_MEMO", {})
    d = get_yardstick(small, seed=1, cache_dir=tmp_path / "a", verbose=False)
    assert d.path != a.path


def test_getting_the_yardstick_leaves_the_callers_rng_alone(digits, monkeypatch):
    # a task draws its samples right after asking for the yardstick: loading it from the cache
    # (which builds a network) must not shift the caller's random stream
    monkeypatch.setattr(ys_mod, "_MEMO", {})
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    get_yardstick(digits)
    assert torch.equal(torch.rand(3), expected)


# ---- the kernel distance (KID) ---------------------------------------------------------------

def _mmd2_loops(x, y):
    """The unbiased MMD² written out pair by pair, in Python floats."""
    k = lambda a, b: (sum(float(p) * float(q) for p, q in zip(a, b)) / len(a) + 1.0) ** 3
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kernel_distance_matches_the_pairwise_loops(gen):
    from genmodels.metrics import kernel_distance
    x = torch.randn(7, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(5, 3, generator=gen, dtype=torch.float64) + 0.5
    assert abs(float(kernel_distance(x, y)) - _mmd2_loops(x.tolist(), y.tolist())) < 1e-12


def test_kernel_distance_is_unbiased_and_grows_with_a_shift(gen):
    """Monte Carlo: over many pairs of small same-distribution sets its mean is 0 within 4 standard
    errors (FD's small-sample estimate is far above 0 there); a mean shift makes it clearly > 0."""
    from genmodels.metrics import kernel_distance, frechet_distance_from_features
    kids, fds = [], []
    for _ in range(400):
        x = torch.randn(10, 4, generator=gen, dtype=torch.float64)
        y = torch.randn(12, 4, generator=gen, dtype=torch.float64)
        kids.append(float(kernel_distance(x, y)))
        fds.append(float(frechet_distance_from_features(x, y)))
    kids = torch.tensor(kids)
    se = float(kids.std()) / len(kids) ** 0.5
    assert abs(float(kids.mean())) < 4 * se
    fds = torch.tensor(fds)
    assert float(fds.mean()) > 10 * float(fds.std()) / len(fds) ** 0.5   # FD's estimate is biased
    shifted = [float(kernel_distance(torch.randn(10, 4, generator=gen, dtype=torch.float64) + 1.0,
                                     torch.randn(12, 4, generator=gen, dtype=torch.float64)))
               for _ in range(50)]
    assert sum(shifted) / 50 > 10 * se


@pytest.mark.parametrize("bad, match", [
    (lambda x: x[:1], "features_x"),
    (lambda x: x[:, :2], "features_y"),
    (lambda x: torch.full_like(x, float("nan")), "features_x"),
])
def test_kernel_distance_rejects_bad_inputs(bad, match):
    from genmodels.metrics import kernel_distance
    x = torch.randn(6, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=match):
        if match == "features_y":
            kernel_distance(x, bad(x))
        else:
            kernel_distance(bad(x), x)
