r"""Video prediction on moving digits with the generic trainer.

* training step: a fresh batch of training clips (:meth:`MovingDigits.sample`, a pure function
  of (run seed, step)); the :class:`~genmodels.video.models.ConvLSTMPredictor` reads the k
  context frames and predicts the next F, feeding its own predictions back (``model.feedback=
  prediction``, as at test time) or reading the true frames (``truth``: teacher forcing); the loss
  is binary cross-entropy (or MSE) of the predicted frames, the one-step predictions inside the
  context included when ``model.context_loss``;
* evaluation, per horizon h = 1…F on the split's fixed clips: PSNR (:func:`~genmodels.video.psnr`)
  of the h-th predicted frames of all clips taken as one item, 10·log10(1 / MSE_h) with MSE_h the
  mean over clips and pixels (a mean of per-clip PSNRs would be +inf as soon as one baseline
  frame is exact, which a shift often is at h = 1); SSIM (:func:`~genmodels.video.ssim`), the
  mean over clips; and, for one-digit clips, the tracker's error: the Euclidean distance in
  pixels between the centre of mass of the predicted frame and the digit's true centre, mean
  over clips — for the model and for the two baselines of :mod:`genmodels.video.baselines` (copy
  the last frame; shift it by the last observed motion) and for a blank frame (all zeros: what
  predicting nothing scores; its tracker reads the canvas centre). Validation logs the means over the
  horizons; the test also logs every horizon (``psnr_h1`` … ``track_err_shift_h10``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from genmodels.errors import ConfigError
from genmodels.train.task import Task
from genmodels.video.baselines import centre_of_mass, copy_last, shift_last
from genmodels.video.data import Clips, MovingDigits
from genmodels.video.measures import psnr, ssim
from genmodels.video.models import ConvLSTMPredictor

__all__ = ["VideoPredictTask", "METHODS", "horizon_metrics"]

#: what is scored, with its metric-name suffix: the model, the two baselines, and a blank (all
#: zero) frame — the score of predicting nothing, which shows how much of PSNR is background
METHODS = {"model": "", "copy": "_copy", "shift": "_shift", "blank": "_blank"}


def horizon_metrics(pred: torch.Tensor, truth: torch.Tensor, centres: torch.Tensor | None = None
                    ) -> dict[str, torch.Tensor]:
    """Per-horizon scores of ``pred`` against ``truth`` (both ``[N, F, C, H, W]``), each ``[F]``:
    ``psnr`` (all N frames of a horizon as one item), ``ssim`` (mean over clips) and, given the
    true ``centres [N, F, 2]`` of a single digit, ``track_err`` (mean distance in pixels between
    the centre of mass of ``pred`` and ``centres``)."""
    if pred.shape != truth.shape or pred.ndim != 5:
        raise ValueError(f"pred: expected the shape of truth [N, F, C, H, W] {list(truth.shape)}, "
                         f"got {list(pred.shape)}")
    N, Fh = pred.shape[:2]
    flat_p, flat_t = pred.flatten(0, 1), truth.flatten(0, 1)                # (N·F, C, H, W)
    out = {"psnr": psnr(pred.transpose(0, 1).flatten(1), truth.transpose(0, 1).flatten(1)),  # (F,)
           "ssim": ssim(flat_p, flat_t).view(N, Fh).mean(0)}
    if centres is not None:
        if centres.shape != (N, Fh, 2):
            raise ValueError(f"centres: expected [{N}, {Fh}, 2], got {list(centres.shape)}")
        com = centre_of_mass(pred.sum(2))                                   # (N, F, 2)
        out["track_err"] = (com - centres).norm(dim=-1).mean(0)
    return out


class VideoPredictTask(Task):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        if not isinstance(data, MovingDigits):
            raise ConfigError(f"data: video prediction trains on clips (data=moving_digits), "
                              f"got data={cfg.data.name}")
        m = cfg.model
        self.k, self.F = m.context_frames, m.future_frames
        self.model = ConvLSTMPredictor(data.frame_shape[0], m.enc_channels, list(m.hidden_channels),
                                       m.kernel_size, m.downsample, output=m.output,
                                       motion_kernel=m.motion_kernel, canvas=data.canvas).to(device)

    # ------------------------------------------------------------------ training
    def draw(self, step):
        clips = self.data.sample("train", self.cfg.trainer.batch_size, (self.cfg.seed, step))
        return {"frames": clips.frames[:, :self.k + self.F].to(self.device)}

    def loss(self, frames: torch.Tensor, teacher_forcing: bool = False) -> torch.Tensor:
        """Mean loss of the predicted frames of ``frames [B, k + F, C, H, W]``."""
        logits = self.model(frames, self.k, teacher_forcing=teacher_forcing)  # frames 2 … k+F
        target = frames[:, 1:]
        if not self.cfg.model.context_loss:
            logits, target = logits[:, self.k - 1:], target[:, self.k - 1:]
        if self.cfg.model.loss == "bce":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(torch.sigmoid(logits), target)

    def training_step(self, step, batch, optimize):
        loss = self.loss(batch["frames"], teacher_forcing=self.cfg.model.feedback == "truth")
        optimize(loss)
        return {"loss": loss.item()}

    # ------------------------------------------------------------------ evaluation
    def _clips(self, split: str) -> Clips:
        clips = self.data.split(split)
        n = self.cfg.model.eval_clips or len(clips)
        return Clips(*(getattr(clips, f)[:n] for f in ("frames", "positions", "centres", "sources", "labels")))

    def predictions(self, context: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"model", "copy", "shift", "blank"}`` → ``[N, F, C, H, W]`` after ``context [N, k, C, H, W]``."""
        was = self.model.training
        self.model.eval()
        model = torch.cat([self.model.predict(c.to(self.device), self.F).cpu() for c in context.split(64)])
        self.model.train(was)
        return {"model": model, "copy": copy_last(context, self.F),
                "shift": shift_last(context, self.F, self.cfg.model.max_shift),
                "blank": context.new_zeros(len(context), self.F, *context.shape[2:])}

    def scores(self, clips: Clips) -> dict[str, dict[str, torch.Tensor]]:
        """method → metric → ``[F]`` on ``clips`` (:func:`horizon_metrics`)."""
        k, Fh = self.k, self.F
        context, truth = clips.frames[:, :k], clips.frames[:, k:k + Fh]
        centres = clips.centres[:, k:k + Fh, 0] if clips.centres.shape[2] == 1 else None
        return {name: horizon_metrics(p, truth, centres) for name, p in self.predictions(context).items()}

    def evaluate(self, split):
        clips = self._clips(split)
        with torch.no_grad():
            frames = clips.frames[:, :self.k + self.F]
            loss = sum(self.loss(c.to(self.device)).item() * len(c) for c in frames.split(64)) / len(frames)
            scores = self.scores(clips)
        out = {"loss": loss}
        for method, suffix in METHODS.items():
            for metric, v in scores[method].items():
                out[f"{metric}{suffix}"] = v.mean().item()
                if split == "test":
                    for h in range(self.F):
                        out[f"{metric}{suffix}_h{h + 1}"] = v[h].item()
        for metric in scores["model"]:                 # horizons where the model beats both
            better = (lambda a, b: a < b) if metric == "track_err" else (lambda a, b: a > b)
            per_h = {m: scores[m][metric] for m in ("model", "copy", "shift")}
            wins = better(per_h["model"], per_h["copy"]) & better(per_h["model"], per_h["shift"])
            out[f"{metric}_horizons_beating_both"] = int(wins.sum())
        return out

    # ------------------------------------------------------------------ figures
    def figures(self, out_dir: Path):
        from genmodels.video.plots import (save_horizon_plot, save_prediction_frames,
                                           save_prediction_gif, save_track_plot)
        clips = self._clips("test")
        n = min(self.cfg.model.n_figure_clips, len(clips))
        k, Fh = self.k, self.F
        preds = self.predictions(clips.frames[:n, :k])
        rows = {"truth": clips.frames[:n, k:k + Fh], "ConvLSTM": preds["model"],
                "copy last": preds["copy"], "shift last": preds["shift"]}
        with torch.no_grad():
            scores = self.scores(clips)
        paths = [save_prediction_frames(clips.frames[:n, :k], rows, out_dir / "prediction_frames.png"),
                 save_horizon_plot(scores, out_dir / "horizon_metrics.png"),
                 *save_prediction_gif(clips.frames[:n, :k], rows, out_dir / "prediction.gif",
                                     fps=self.cfg.model.gif_fps)]
        if clips.centres.shape[2] == 1:                                 # the tracker: one digit
            tracked = {m: centre_of_mass(preds[m].sum(2)) for m in ("model", "copy", "shift")}
            paths.append(save_track_plot(clips.centres[:n, :k + Fh, 0], k, tracked,
                                         self.data.canvas, out_dir / "tracks.png"))
        return paths
