r"""Frame interpolation and super-resolution with the generic trainer (genmodels/video/frames.py).

**Interpolation** (``model.family=video_interp``, data=moving_digits): a training step draws fresh
training clips (:meth:`MovingDigits.sample`, a pure function of (run seed, step)) and one triplet
(f_{t−1}, f_t, f_{t+1}) per clip at a random t; the :class:`ResidualUNet` reads the two
neighbours stacked and adds its output to their cross-fade; the loss is L1 (or MSE) against f_t.
Evaluation scores every triplet of the split's fixed clips (disjoint source images).

**Super-resolution** (``model.family=video_superres``, data=fashion_mnist or digits): a training
step draws a minibatch of training images; each is average-pooled by ``model.factor``
(:func:`downsample`), upsampled bicubically, and the net adds its output to that upsampling.
Evaluation on the split's images.

Scores (model and baseline alike, the outputs clamped to [0, 1]): ``psnr`` — PSNR
(:func:`~genmodels.video.psnr`) of all scored images taken as one item, 10·log10(1 / MSE) with MSE
the mean over images and pixels; ``ssim`` — the mean SSIM (:func:`~genmodels.video.ssim`; only
for images of at least 11×11, so not for the 8×8 digits); ``psnr_gain`` — model minus baseline;
``fd`` / ``fd_bicubic`` — for super-resolution, the Fréchet distance on the image yardstick
(:mod:`genmodels.metrics`) between the super-resolved test images and the true ones, and
``fd_real``, that between as many real validation images and the same test images. The
super-resolved sets are paired with the test images (one output per test image), so their FD can
fall below ``fd_real``, which also carries the sampling noise of two different image sets.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from genmodels.data.images import ImageSplits
from genmodels.errors import ConfigError
from genmodels.train.task import Task, batch_indices
from genmodels.video.data import MovingDigits
from genmodels.video.frames import (
    ResidualUNet,
    bicubic_upsample,
    crossfade,
    downsample,
    middle_triplets,
)
from genmodels.video.measures import psnr, ssim

__all__ = ["FrameInterpTask", "SuperResTask", "image_scores"]


def image_scores(pred: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """``psnr`` (all images pooled: 10·log10(1 / mean squared error)) and, for images of at least
    11×11, ``ssim`` (the mean over images) of ``pred`` against ``truth``, both ``[N, C, H, W]``."""
    if not isinstance(pred, torch.Tensor) or not isinstance(truth, torch.Tensor) or pred.shape != truth.shape \
            or pred.ndim != 4:
        raise ValueError(f"pred: expected the shape of truth [N, C, H, W] "
                         f"{list(getattr(truth, 'shape', []))}, got {list(getattr(pred, 'shape', []))}")
    out = {"psnr": psnr(pred.reshape(1, -1), truth.reshape(1, -1)).item()}
    if min(pred.shape[-2:]) >= 11:
        out["ssim"] = ssim(pred, truth).mean().item()
    return out


def _loss(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(pred, target) if kind == "l1" else F.mse_loss(pred, target)


def _scored(out: dict, scores: dict[str, dict[str, float]], baseline: str) -> dict:
    for name, s in scores.items():
        for metric, v in s.items():
            out[metric if name == "model" else f"{metric}_{name}"] = v
    out["psnr_gain"] = out["psnr"] - out[f"psnr_{baseline}"]
    return out


# ====================================================================== interpolation
class FrameInterpTask(Task):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        if not isinstance(data, MovingDigits):
            raise ConfigError(f"data: frame interpolation trains on clips (data=moving_digits), "
                              f"got data={cfg.data.name}")
        m = cfg.model
        C = data.frame_shape[0]
        self.model = ResidualUNet(2 * C, C, m.width, m.levels).to(device)

    def draw(self, step):
        clips = self.data.sample("train", self.cfg.trainer.batch_size, (self.cfg.seed, step)).frames
        B, T = clips.shape[:2]
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        t = torch.randint(1, T - 1, (B,), generator=g)
        rows = torch.arange(B)
        return {"prev": clips[rows, t - 1].to(self.device), "middle": clips[rows, t].to(self.device),
                "next": clips[rows, t + 1].to(self.device)}

    def interpolate(self, prev: torch.Tensor, next: torch.Tensor) -> torch.Tensor:
        """The model's middle frame (unclamped) between ``prev`` and ``next`` ``[B, C, H, W]``."""
        return self.model(torch.cat([prev, next], 1), crossfade(prev, next))

    def training_step(self, step, batch, optimize):
        loss = _loss(self.cfg.model.loss, self.interpolate(batch["prev"], batch["next"]), batch["middle"])
        optimize(loss)
        return {"loss": loss.item()}

    def _frames(self, split: str) -> torch.Tensor:
        frames = self.data.split(split).frames
        return frames[:self.cfg.model.eval_clips or len(frames)]

    @torch.no_grad()
    def predictions(self, prev: torch.Tensor, next: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"model", "crossfade"}`` → middle frames in [0, 1] (on the CPU)."""
        was = self.model.training
        self.model.eval()
        model = torch.cat([self.interpolate(p.to(self.device), n.to(self.device)).cpu()
                           for p, n in zip(prev.split(256), next.split(256))])
        self.model.train(was)
        return {"model": model.clamp(0, 1), "crossfade": crossfade(prev, next)}

    def evaluate(self, split):
        prev, middle, nxt = middle_triplets(self._frames(split))
        preds = self.predictions(prev, nxt)
        with torch.no_grad():
            loss = sum(_loss(self.cfg.model.loss, self.interpolate(p.to(self.device), n.to(self.device)).cpu(), m).item()
                       * len(m) for p, m, n in zip(prev.split(256), middle.split(256), nxt.split(256))) / len(middle)
        return _scored({"loss": loss}, {k: image_scores(v, middle) for k, v in preds.items()}, "crossfade")

    def doubled(self, clip: torch.Tensor) -> dict[str, torch.Tensor]:
        """A clip ``[T, C, H, W]`` seen at half its frame rate (its even frames) and raised back:
        ``{"truth", "half rate", "cross-fade", "model"}`` → ``[T', C, H, W]`` (T' = T, or T − 1 when
        T is even, so that the last frame is an observed one); "half rate" holds each observed frame
        for two frames, the others fill the odd frames from their two observed neighbours."""
        if not isinstance(clip, torch.Tensor) or clip.ndim != 4 or clip.shape[0] < 3:
            raise ValueError(f"clip: expected [T, C, H, W] with T >= 3, got {list(getattr(clip, 'shape', []))}")
        T = clip.shape[0] if clip.shape[0] % 2 else clip.shape[0] - 1
        clip = clip[:T]
        prev, nxt = clip[0:T - 2:2], clip[2:T:2]
        fills = self.predictions(prev, nxt)
        out = {"truth": clip, "half rate": clip.clone()}
        out["half rate"][1::2] = prev
        for name, key in (("cross-fade", "crossfade"), ("model", "model")):
            out[name] = clip.clone()
            out[name][1::2] = fills[key]
        return out

    def figures(self, out_dir: Path):
        from genmodels.video.plots_frames import save_columns, save_doubled_gif
        frames = self._frames("test")
        n = min(self.cfg.model.n_figure_items, len(frames))
        t = frames.shape[1] // 2
        prev, middle, nxt = frames[:n, t - 1], frames[:n, t], frames[:n, t + 1]
        preds = self.predictions(prev, nxt)
        paths = [save_columns({"f(t-1)": prev, "f(t+1)": nxt, "truth f(t)": middle,
                               "cross-fade": preds["crossfade"], "model": preds["model"],
                               "|model - truth|": (preds["model"] - middle).abs()},
                              out_dir / "interpolation.png",
                              title="the middle frame from its two neighbours (held-out clips)")]
        paths.extend(save_doubled_gif(self.doubled(frames[0]), out_dir / "doubled.gif",
                                      fps=self.cfg.model.gif_fps))
        return paths


# ====================================================================== super-resolution
class SuperResTask(Task):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        if not isinstance(data, ImageSplits):
            raise ConfigError(f"data: super-resolution trains on images (data=fashion_mnist or "
                              f"data=digits), got data={cfg.data.name}")
        m = cfg.model
        C, H, W = data.image_shape
        if H % m.factor or W % m.factor:
            raise ConfigError(f"model.factor: {m.factor} must divide the image size {H}×{W}")
        if H % 2 ** m.levels or W % 2 ** m.levels:
            raise ConfigError(f"model.levels: 2**{m.levels} must divide the image size {H}×{W}")
        self.factor = m.factor
        self.model = ResidualUNet(C, C, m.width, m.levels).to(device)

    def draw(self, step):
        x = self.data.train
        idx = batch_indices(len(x), self.cfg.trainer.batch_size, step, self.cfg.seed)
        return {"images": x[idx].to(self.device)}

    def upscale(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(low-res, bicubic, model)`` of high-resolution ``images [B, C, H, W]`` (unclamped)."""
        low = downsample(images, self.factor)
        up = bicubic_upsample(low, self.factor)
        return low, up, self.model(up, up)

    def training_step(self, step, batch, optimize):
        loss = _loss(self.cfg.model.loss, self.upscale(batch["images"])[2], batch["images"])
        optimize(loss)
        return {"loss": loss.item()}

    def _images(self, split: str) -> torch.Tensor:
        x, _ = self.data.split(split)
        return x[:self.cfg.model.eval_images]

    @torch.no_grad()
    def predictions(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"low", "bicubic", "model"}`` of ``images``, the last two clamped to [0, 1] (on the CPU)."""
        was = self.model.training
        self.model.eval()
        parts = [tuple(t.cpu() for t in self.upscale(c.to(self.device))) for c in images.split(256)]
        self.model.train(was)
        low, up, model = (torch.cat(p) for p in zip(*parts))
        return {"low": low, "bicubic": up.clamp(0, 1), "model": model.clamp(0, 1)}

    def evaluate(self, split):
        x = self._images(split)
        preds = self.predictions(x)
        m = self.cfg.model
        loss = _loss(m.loss, preds["model"], x).item()
        out = _scored({"loss": loss}, {k: image_scores(preds[k], x) for k in ("model", "bicubic")}, "bicubic")
        if m.fd_images and (split == "test" or m.val_fd):
            from genmodels.metrics import get_yardstick
            ys = get_yardstick(self.data, seed=0)
            n = min(m.fd_images, len(x))
            other = self.data.split("val" if split == "test" else "test")[0][:n]
            out.update(fd=ys.fd(preds["model"][:n], x[:n]), fd_bicubic=ys.fd(preds["bicubic"][:n], x[:n]),
                       fd_real=ys.fd(other, x[:len(other)]), fd_images=n)
        return out

    def figures(self, out_dir: Path):
        from genmodels.video.plots_frames import save_columns
        x = self._images("test")[:self.cfg.model.n_figure_items]
        p = self.predictions(x)
        s = self.factor
        return [save_columns({f"low-res (1/{s})": p["low"], "bicubic": p["bicubic"], "model": p["model"],
                              "truth": x}, out_dir / "superres.png",
                             title=f"{s}x super-resolution of held-out images (low-res: {s}x{s} average pooling)")]
