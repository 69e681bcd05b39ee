r"""A sample-quality yardstick that needs no download: FD and class coverage in the feature space
of a small classifier trained once per dataset.

Inception-based FID needs a 100 MB network trained on ImageNet; for 8×8 digits and 28×28
Fashion-MNIST a small CNN trained on the dataset's own training split does the same job (the
idea of the "FD in a domain classifier's space" used for MNIST-like data). The classifier is:

* **deterministic**: weights initialised and batches shuffled from ``seed``, trained on one
  thread, so the same data and seed give the same weights on the same machine;
* **cached**: saved to ``<cache>/yardstick/<dataset>-<hash>.pt`` (``<cache>`` =
  ``$GENMODELS_CACHE`` or ``~/.cache/genmodels``), the hash covering the training images and
  labels, the recipe and the seed, so a changed dataset or recipe trains a new one;
* **cheap**: ≈ 5–15 s on the 8×8 digits, about a minute on Fashion-MNIST, on one CPU core.

What it reports for a set of generated images ``fake`` (values in [0, 1]) against held-out
real images ``real``:

* ``fd``: the Fréchet distance (:func:`~genmodels.metrics.fd.frechet_distance`) between
  Gaussians fitted to the classifier's penultimate features of the two sets (lower is better;
  every model on a dataset is scored against the same held-out reference images, and the
  estimate is biased upwards for small N, so compare numbers measured at the same sizes);
* ``kid``: the unbiased kernel distance (:func:`~genmodels.metrics.kid.kernel_distance`) between
  the same feature sets — 0 on average for real images at any N, so it still separates models
  that sit on FD's small-sample floor;
* ``class_entropy``: the entropy (nats) of the histogram of the classifier's predicted classes
  over the fakes — ln 10 ≈ 2.303 when the ten classes are equally covered, 0 for a generator
  that makes only one class (mode collapse).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import sys
import time
from dataclasses import dataclass, asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_int, check_tensor
from genmodels.metrics.fd import frechet_distance_from_features
from genmodels.metrics.kid import kernel_distance

__all__ = ["YardstickNet", "Yardstick", "Recipe", "RECIPES", "get_yardstick",
           "class_coverage_entropy", "default_cache_dir"]

#: bump when the network or the training loop changes, so old caches are not reused
VERSION = 1


def default_cache_dir() -> Path:
    return Path(os.environ.get("GENMODELS_CACHE", Path.home() / ".cache" / "genmodels")) / "yardstick"


@dataclass(frozen=True)
class Recipe:
    """How the classifier is trained (part of the cache key)."""
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 16               # channels of the first conv; the second has 2·width
    feature_dim: int = 64         # penultimate features: the space FD is measured in


#: one recipe per dataset; anything else gets the default
RECIPES = {"digits": Recipe(epochs=30, batch_size=64, lr=2e-3, width=16, feature_dim=64),
           "fashion_mnist": Recipe(epochs=3, batch_size=128, lr=2e-3, width=16, feature_dim=128)}


class YardstickNet(nn.Module):
    """conv 5×5 stride 2 → ReLU → conv 5×5 stride 2 → ReLU → linear → ReLU (features) → linear.

    ``[B, C, H, W]`` in [0, 1] → logits ``[B, classes]``; :meth:`features` gives ``[B, feature_dim]``.
    28×28 → 14×14 → 7×7; 8×8 → 4×4 → 2×2.
    """

    def __init__(self, image_shape, num_classes: int, width: int = 16, feature_dim: int = 64):
        super().__init__()
        c, h, w = image_shape
        self.image_shape = tuple(image_shape)
        self.conv = nn.Sequential(
            nn.Conv2d(c, width, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 5, stride=2, padding=2), nn.ReLU(),
        )
        h2, w2 = (h + 1) // 2, (w + 1) // 2
        h4, w4 = (h2 + 1) // 2, (w2 + 1) // 2
        self.fc = nn.Sequential(nn.Linear(2 * width * h4 * w4, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv((x - 0.5) / 0.5)                      # (B, 2w, ⌈H/4⌉, ⌈W/4⌉)
        return self.fc(h.flatten(1))                        # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def class_coverage_entropy(labels: torch.Tensor, num_classes: int) -> float:
    """Entropy (nats) of the histogram of integer ``labels [N]`` over ``num_classes`` classes."""
    check_tensor("labels", labels, ndim=1, floating=False)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels: expected integer class indices, got dtype {labels.dtype}")
    check_int("num_classes", num_classes, minimum=1)
    if labels.numel() == 0:
        raise ValueError("labels: expected at least one label")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels: class indices must lie in [0, {num_classes - 1}], got "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    p = torch.bincount(labels.long().cpu(), minlength=num_classes).to(torch.float64)
    p = p / p.sum()
    p = p[p > 0]
    return float(-(p * p.log()).sum()) + 0.0             # + 0.0 turns −0.0 into 0.0


def _check_images(name: str, x: torch.Tensor, shape) -> torch.Tensor:
    check_tensor(name, x, ndim=4)
    if tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name}: expected images [N, {', '.join(map(str, shape))}], got {list(x.shape)}")
    return x


class Yardstick:
    """A trained :class:`YardstickNet` plus what it measures. Images are ``[N, C, H, W]`` in [0, 1]
    (values outside are clamped)."""

    def __init__(self, net: YardstickNet, num_classes: int, name: str, accuracy: float, path: Path | None):
        self.net = net.eval()
        self.num_classes, self.name, self.accuracy, self.path = num_classes, name, accuracy, path

    @torch.no_grad()
    def _run(self, images: torch.Tensor, fn, chunk: int = 1000) -> torch.Tensor:
        _check_images("images", images, self.net.image_shape)
        x = images.detach().to("cpu", torch.float32).clamp(0, 1)
        return torch.cat([fn(c) for c in x.split(chunk)])

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``[N, feature_dim]`` (float32)."""
        return self._run(images, self.net.features)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted classes ``[N]``."""
        return self._run(images, lambda c: self.net(c).argmax(dim=1))

    def fd(self, fake: torch.Tensor, real: torch.Tensor) -> float:
        return float(frechet_distance_from_features(self.features(fake), self.features(real)))

    def class_entropy(self, images: torch.Tensor) -> float:
        return class_coverage_entropy(self.predict(images), self.num_classes)

    def score(self, fake: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
        """``{"fd", "kid", "class_entropy"}`` of ``fake`` against the held-out ``real`` images."""
        _check_images("fake", fake, self.net.image_shape)
        _check_images("real", real, self.net.image_shape)
        f_fake, f_real = self.features(fake), self.features(real)
        # the cubic kernel needs features of order 1: centre both sets on the real set's mean and
        # divide by its root-mean-square spread, one number for all features (a per-feature scale
        # would blow up the features that are almost constant on real images) — one fixed map per
        # reference set, so the models scored against it stay comparable
        mu = f_real.mean(dim=0)
        sd = (f_real - mu).pow(2).mean().sqrt().clamp(min=1e-6)
        return {"fd": float(frechet_distance_from_features(f_fake, f_real)),
                "kid": float(kernel_distance((f_fake - mu) / sd, (f_real - mu) / sd)),
                "class_entropy": self.class_entropy(fake)}


def _hash(data, recipe: Recipe, seed: int) -> str:
    h = hashlib.sha256()
    h.update(f"v{VERSION}|{data.name}|{sorted(asdict(recipe).items())}|{seed}".encode())
    h.update(data.train.to(torch.float32).contiguous().numpy().tobytes())
    h.update(data.train_labels.to(torch.int64).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _train(data, recipe: Recipe, seed: int) -> YardstickNet:
    """Adam on cross-entropy over the training split; one thread and a private RNG stream."""
    x, y = data.train.to("cpu", torch.float32), data.train_labels.to("cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(seed)
            net = YardstickNet(data.image_shape, data.num_classes, recipe.width, recipe.feature_dim)
            opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
            g = torch.Generator().manual_seed(seed)
            n = len(x)
            steps_per_epoch = n // recipe.batch_size
            total = recipe.epochs * steps_per_epoch
            k = 0
            for epoch in range(recipe.epochs):
                perm = torch.randperm(n, generator=g)
                for i in range(steps_per_epoch):
                    idx = perm[i * recipe.batch_size:(i + 1) * recipe.batch_size]
                    lr = recipe.lr * 0.5 * (1 + math.cos(math.pi * k / total))  # cosine decay
                    for group in opt.param_groups:
                        group["lr"] = lr
                    loss = F.cross_entropy(net(x[idx]), y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    k += 1
    finally:
        torch.set_num_threads(threads)
    return net.eval()


_MEMO: dict[str, Yardstick] = {}


def get_yardstick(data, seed: int = 0, cache_dir: str | Path | None = None,
                  verbose: bool = True) -> Yardstick:
    """The yardstick of ``data`` (an :class:`~genmodels.data.images.ImageSplits`): loaded from the
    cache when it is there, else trained (deterministically from ``seed``) and cached."""
    for attr in ("train", "train_labels", "test", "test_labels", "num_classes", "name"):
        if not hasattr(data, attr):
            raise ValueError(f"data: expected ImageSplits-like data with .{attr}, got {type(data).__name__}")
    recipe = RECIPES.get(data.name, Recipe())
    key = _hash(data, recipe, seed)
    path = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    path = path / f"{data.name}-{key}.pt"
    memo_key = f"{path}"
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    with torch.random.fork_rng(devices=[]):      # building the net must not move the caller's RNG
        net = YardstickNet(data.image_shape, data.num_classes, recipe.width, recipe.feature_dim)
    accuracy = None
    if path.exists():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(blob["state_dict"])
            accuracy = float(blob["test_accuracy"])
        except Exception as e:                               # a corrupt cache: train again
            print(f"yardstick: ignoring unreadable cache {path} ({e})", file=sys.stderr)
            accuracy = None
    if accuracy is None:
        t0 = time.perf_counter()
        net = _train(data, recipe, seed)
        with torch.no_grad():
            pred = torch.cat([net(c).argmax(1) for c in data.test.to("cpu", torch.float32).split(1000)])
        accuracy = float((pred == data.test_labels.cpu()).float().mean())
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save({"state_dict": net.state_dict(), "test_accuracy": accuracy,
                    "recipe": asdict(recipe), "seed": seed, "version": VERSION}, buf)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)                                 # atomic: readers never see half a file
        if verbose:
            print(f"yardstick: trained the {data.name} classifier in {time.perf_counter() - t0:.1f} s "
                  f"(test accuracy {accuracy:.3f}); cached at {path}", file=sys.stderr)
    ys = Yardstick(net, data.num_classes, data.name, accuracy, path)
    _MEMO[memo_key] = ys
    return ys


def sample_quality(data, split: str, generate, n: int | None = None, n_reference: int | None = None,
                   chunk: int = 500, timing: bool = True) -> dict[str, float]:
    """Generate ``n`` images with ``generate(k) -> [k, C, H, W] in [0, 1]`` (default 1000) and
    score them against the first ``n_reference`` images of ``split`` (default: all, at most 2000);
    ``split`` may join held-out splits with "+" (``"val+test"``) for a larger reference set.

    The reference set is the same for every model on a dataset, so differences between models are
    not blurred by a different draw of real images; the FD estimate still carries sampling noise
    (a few units at these sizes), so compare models with repeated draws (see
    experiments/image_generators/evaluate.py).

    Returns ``fd``, ``kid`` (unbiased: 0 on average for real images), ``class_entropy``, ``fd_samples`` (= n), ``fd_reference`` and, when ``timing``,
    the wall time (``sample_s_per_image``) and this process's CPU time (``sample_cpu_s_per_image``,
    the better number on a shared machine when torch runs one thread) of ``generate`` divided by
    n. Timings differ from run to run, so tasks whose results must repeat exactly pass
    ``timing=False``. Always uses the yardstick of seed 0, whatever the run's seed, so every run on
    a dataset is measured with the same ruler.
    """
    # "val+test": the union of held-out splits, a larger reference with a lower FD floor
    real = torch.cat([data.split(name)[0] for name in split.split("+")])
    n_reference = min(len(real), 2000) if n_reference is None else min(n_reference, len(real))
    n = 1000 if n is None else n
    check_int("n", n, minimum=2)
    check_int("n_reference", n_reference, minimum=2)
    ys = get_yardstick(data, seed=0)
    t0, c0 = time.perf_counter(), time.process_time()
    fake = torch.cat([generate(min(chunk, n - i)).detach().float().cpu() for i in range(0, n, chunk)])
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    out = ys.score(fake, real[:n_reference])
    out.update(fd_samples=n, fd_reference=n_reference)
    if timing:
        out.update(sample_s_per_image=seconds / n, sample_cpu_s_per_image=cpu_seconds / n)
    return out
