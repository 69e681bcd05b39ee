r"""Image-to-video with a motion brush (``model.family=video_i2v``, data=moving_digits) with the
generic trainer.

* **clips**: one digit in a straight line, never touching a wall (:func:`straight_clips`; the
  canvas, speed range and clip length come from ``data``; a clip is the key frame and the
  F = ``data.frames`` − 1 frames after it). A training step renders ``trainer.batch_size`` fresh
  clips from the training images (a pure function of (data seed, run seed, step)); val and test
  clips are fixed sets (``data.val_clips``, ``data.test_clips``) from the val and test images;
* **training** (``model.process=flow``, the default) = conditional flow matching
  (:func:`~genmodels.flow.matching.flow_matching_loss`) on the F future frames stacked as
  channels, scaled to [−1, 1], with v_θ(x_t, t, key, u) (:class:`DirectionUNet`); or
  (``process=ddpm``) Algorithm 1 (:func:`~genmodels.diffusion.ddpm.ddpm_loss`) on ε_θ. The
  direction u is replaced by the null embedding ∅ with probability ``model.direction_dropout``;
  EMA weights sample;
* **sampling** = ``model.sample_steps`` Euler steps of the flow ODE
  (:func:`~genmodels.flow.matching.euler_flow_sample`; ddpm: deterministic DDIM) with the guided
  prediction ṽ = v(·, ∅) + s (v(·, u) − v(·, ∅)) (:func:`direction_eps_model` →
  ``guided_eps_model`` → ``classifier_free_guidance``). Every scale starts from the same noise.

**Test scores** (per guidance scale s of ``model.guidance_scales``, tag ``s<s>``, on the test
clips, whose images no training clip uses):

* ``angle_err_<tag>`` / ``angle_err_std_<tag>``: mean and standard deviation over clips of the
  absolute angle (degrees) between the tracked direction of the generated frames
  (:func:`tracked_angles`: centres of mass, least-squares velocity from the key frame) and the
  clip's own direction, which is the one requested; ``speed_<tag>``: mean tracked speed (px/frame);
* ``angle_err_wrong_<tag>`` (and ``_std``): the **motion-brush check** — from the same key frames,
  ask for a direction the clip did not take (its own + 90°, 180° or 270°, in turn) and measure
  the error against the *request*; ``wrong_vs_clip_<tag>``: the angle of that motion to the clip's
  own direction (large when the request, not the key frame, sets the motion). At s = 0 the
  direction is never seen, so the samples are those of the first check, scored against the
  other requests;
* ``agree_<tag>_h<h>``: the fraction of clips whose frame h is given the key frame's class by the
  image yardstick classifier (:func:`~genmodels.metrics.get_yardstick`, trained on the 8×8
  training images) — both read through :func:`digit_crops` (the 8×8 window with the most
  intensity); ``agree_<tag>`` the mean over h, ``agree_min_<tag>`` the worst frame;
  ``agree_wrong_<tag>`` the mean for the other requests;
* ``fd_<tag>_h<h>``: the Fréchet distance in the yardstick's feature space between the crops of
  the generated frames h and those of the true frames h of the same clips; ``fd_<tag>`` the mean;
* the same measures on the true frames (``angle_err_real``, ``agree_real_h<h>``) — what the
  tracker and the crop make of real clips — and ``fd_real_h<h>``, the FD between the true frames
  h of the val clips and those of the test clips: the floor of two real sets of this size;
  ``key_label_acc``: the yardstick's accuracy on the key frames (against the true labels).

Validation logs the loss and, on ``model.val_sample_clips`` clips, ``angle_err_s1``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from genmodels.diffusion.ddpm import ddim_sample, ddpm_draw, ddpm_loss
from genmodels.diffusion.schedules import NoiseSchedule, cosine_beta_schedule, linear_beta_schedule
from genmodels.diffusion.task import DiffusionModel
from genmodels.errors import ConfigError
from genmodels.flow.matching import euler_flow_sample, flow_matching_draw, flow_matching_loss
from genmodels.train.task import Task
from genmodels.video.baselines import centre_of_mass
from genmodels.video.data import SPLITS, Clips, MovingDigits
from genmodels.video.i2v import (
    DirectionUNet,
    angle_error,
    digit_crops,
    direction_eps_model,
    direction_vector,
    fitted_velocity,
    motion_angle,
    straight_clips,
    tracked_angles,
)

__all__ = ["I2VTask", "scale_tag", "other_directions"]

#: the four brush directions of the figures (degrees) and their labels
BRUSH = {0.0: "→ 0°", 90.0: "↑ 90°", 180.0: "← 180°", 270.0: "↓ 270°"}


def scale_tag(s: float) -> str:
    """``s3`` for the guidance scale 3 (``s0``, ``s1``, ``s1.5`` …): the suffix of its metrics."""
    return f"s{s:g}"


def other_directions(angles: torch.Tensor) -> torch.Tensor:
    """Requests the clips did not take: clip i asks for its own θ + 90°·(1 + i mod 3), mod 360°."""
    i = torch.arange(len(angles), dtype=angles.dtype)
    return torch.remainder(angles + 90.0 * (1 + torch.remainder(i, 3)), 360.0)


class I2VTask(Task):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        if not isinstance(data, MovingDigits):
            raise ConfigError(f"data: image-to-video trains on moving clips (data=moving_digits), "
                              f"got data={cfg.data.name}")
        if data.num_digits != 1:
            raise ConfigError(f"data.num_digits: the motion brush moves one digit, got {data.num_digits}")
        m = cfg.model
        self.F = data.frames - 1
        self.size = data.source_images.image_shape[-1]
        self.flow = m.process == "flow"
        net = DirectionUNet(self.F, m.base_channels, tuple(m.channel_mults), m.num_groups,
                            m.time_scale if self.flow else 1.0, m.output, m.motion_kernel, m.min_gap)
        self.model = DiffusionModel(net, m.ema_decay).to(device)
        betas = (linear_beta_schedule(m.timesteps, m.beta_start, m.beta_end) if m.schedule == "linear"
                 else cosine_beta_schedule(m.timesteps))
        self.schedule = NoiseSchedule(betas.to(device))                         # ddpm only
        self._fixed: dict[str, tuple[Clips, torch.Tensor]] = {}
        self._test_detail: dict | None = None

    def param_groups(self):
        return {"model": list(self.model.net.parameters())}

    # ------------------------------------------------------------------ clips
    def clips(self, split: str, n: int, seed: tuple[int, ...]) -> tuple[Clips, torch.Tensor]:
        """``n`` straight clips of ``split``'s images and their directions (degrees), a pure
        function of (the data seed, ``split``, ``seed``)."""
        d = self.data
        x, y = d.source_images.split(split)
        mixed = int(np.random.SeedSequence([d.seed, SPLITS.index(split), *seed]).generate_state(1)[0])
        return straight_clips(x, y, n, d.frames, d.canvas, d.speed, mixed)

    def fixed(self, split: str) -> tuple[Clips, torch.Tensor]:
        """The fixed val or test clips (``data.val_clips`` / ``data.test_clips`` of them)."""
        if split not in self._fixed:
            n = len(self.data.split(split))
            self._fixed[split] = self.clips(split, n, (0,))
        return self._fixed[split]

    @staticmethod
    def as_batch(clips: Clips, angles: torch.Tensor) -> dict[str, torch.Tensor]:
        """Key frames ``[B, 1, H, W]`` and the future frames ``[B, F, H, W]`` (the data the model
        generates), in [−1, 1], and the unit directions ``[B, 2]``."""
        frames = clips.frames[:, :, 0] * 2 - 1                                  # (B, T, H, W)
        return {"key": frames[:, :1], "future": frames[:, 1:],
                "direction": direction_vector(angles).to(torch.float32)}

    # ------------------------------------------------------------------ training
    def draw(self, step):
        clips, angles = self.clips("train", self.cfg.trainer.batch_size, (self.cfg.seed, step))
        batch = {k: v.to(self.device) for k, v in self.as_batch(clips, angles).items()}
        batch["t"], batch["noise"] = self.draw_t_noise(batch["future"])
        batch["keep"] = torch.rand(len(angles), device=self.device) >= self.cfg.model.direction_dropout
        return batch

    def draw_t_noise(self, future: torch.Tensor, generator: torch.Generator | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """t and the noise of the loss: t ~ U[0, 1] (flow) or U{0, …, T−1} (ddpm), N(0, I)."""
        if self.flow:
            return flow_matching_draw(future, generator)
        return ddpm_draw(future, self.schedule, generator)

    def loss(self, net, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Flow matching on v_θ(·, ·, key, u) (ddpm: Algorithm 1 on ε_θ) with the batch's ``t``
        and ``noise``; ``keep`` (False: ∅) defaults to all True."""
        key, u, keep = batch["key"], batch["direction"], batch.get("keep")
        model = lambda x_t, t: net(x_t, t, key, u, keep)                        # noqa: E731
        if self.flow:
            return flow_matching_loss(model, batch["future"], t=batch["t"], x0=batch["noise"])
        return ddpm_loss(model, batch["future"], self.schedule, t=batch["t"], noise=batch["noise"])

    def training_step(self, step, batch, optimize):
        loss = self.loss(self.model.net, batch)
        optimize(loss)
        self.model.update_ema(step)
        return {"loss": loss.item()}

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, key: torch.Tensor, angles: torch.Tensor, guidance_scale: float,
                 seed: int = 1, chunk: int = 256) -> torch.Tensor:
        """The F frames after each key frame ``key [N, H, W]`` (in [0, 1]) asked to move towards
        ``angles [N]`` (degrees), at guidance scale s: ``[N, F, H, W]`` in [0, 1] (on the CPU).
        Euler steps of the flow (ddpm: DDIM) from noise drawn by a generator seeded with
        ``seed``: the same noise for every s."""
        m = self.cfg.model
        net = self.model.sampling_net
        was = net.training
        net.eval()
        g = torch.Generator(device=self.device).manual_seed(seed)
        out = []
        for k, a in zip(key.split(chunk), angles.split(chunk)):
            k = (k[:, None] * 2 - 1).to(self.device, torch.float32)           # (n, 1, H, W)
            u = direction_vector(a).to(self.device, torch.float32)
            guided = direction_eps_model(net, k, u, float(guidance_scale))
            shape = (len(k), self.F, *k.shape[-2:])
            if self.flow:
                x = euler_flow_sample(guided, shape, m.sample_steps, g, dtype=torch.float32, device=self.device)
            else:
                x = ddim_sample(guided, shape, self.schedule, m.sample_steps, generator=g, clip_x0=m.clip_x0)
            out.append(((x.clamp(-1, 1) + 1) / 2).cpu())
        net.train(was)
        return torch.cat(out)

    # ------------------------------------------------------------------ scoring
    def _classes(self, frames: torch.Tensor) -> torch.Tensor:
        """Yardstick classes of ``frames [..., H, W]`` (through :func:`digit_crops`), shape ``[...]``."""
        from genmodels.metrics.yardstick import get_yardstick
        ys = get_yardstick(self.data.source_images, seed=0)
        flat = frames.reshape(-1, *frames.shape[-2:])
        return ys.predict(digit_crops(flat, self.size)[:, None]).view(frames.shape[:-2])

    def _features(self, frames: torch.Tensor) -> torch.Tensor:
        from genmodels.metrics.yardstick import get_yardstick
        ys = get_yardstick(self.data.source_images, seed=0)
        return ys.features(digit_crops(frames, self.size)[:, None])

    def frame_scores(self, key: torch.Tensor, frames: torch.Tensor, requested: torch.Tensor,
                     truth: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per clip the tracked direction ``angles [N]`` (degrees, :func:`tracked_angles`), its
        error ``angle_err [N]`` against ``requested [N]``, ``speed [N]``, per frame ``agree [F]`` (key frame's class
        kept) and, given the true frames ``truth``, ``fd [F]``."""
        from genmodels.metrics.fd import frechet_distance_from_features
        both = torch.cat([key[:, None], frames], 1)                              # (N, F+1, H, W)
        classes = self._classes(both)                                           # (N, F+1)
        v = fitted_velocity(centre_of_mass(both.clamp(min=0).double()))       # (N, 2), as tracked_angles
        out = {"angles": motion_angle(v), "speed": v.norm(dim=-1),
               "angle_err": angle_error(motion_angle(v), requested.double()),
               "agree": (classes[:, 1:] == classes[:, :1]).double().mean(0)}
        if truth is not None and len(key) >= 2:
            out["fd"] = torch.tensor([float(frechet_distance_from_features(
                self._features(frames[:, h]), self._features(truth[:, h]))) for h in range(self.F)])
        return out

    def _test(self) -> dict:
        m = self.cfg.model
        clips, angles = self.fixed("test")
        n = min(m.eval_clips or len(angles), len(angles))
        clips = Clips(*(getattr(clips, f)[:n] for f in ("frames", "positions", "centres", "sources", "labels")))
        angles = angles[:n]
        key, truth = clips.frames[:, 0, 0], clips.frames[:, 1:, 0]             # (N, H, W), (N, F, H, W)
        wrong = other_directions(angles)
        out: dict = {"eval_clips": n}
        own, other = "the clip's own direction asked", "another direction asked (the brush)"
        detail = {"angles": angles, "wrong": wrong, "errors": {own: {}, other: {}},
                  "curves": {"agree": {}, "fd": {}}}
        real = self.frame_scores(key, truth, angles)
        out["key_label_acc"] = float((self._classes(key) == clips.labels[:, 0]).double().mean())
        val_truth = self.fixed("val")[0].frames[:, 1:, 0]
        k = min(len(val_truth), n)
        if k >= 2:
            from genmodels.metrics.fd import frechet_distance_from_features
            real["fd"] = torch.tensor([float(frechet_distance_from_features(
                self._features(val_truth[:k, h]), self._features(truth[:k, h]))) for h in range(self.F)])
        self._put(out, "real", real)
        detail["errors"][own]["real frames"] = real["angle_err"]
        detail["curves"]["agree"]["real frames"] = real["agree"]
        if "fd" in real:
            detail["curves"]["fd"]["real (val vs test clips)"] = real["fd"]
        for s in m.guidance_scales:
            tag = scale_tag(s)
            t0, c0 = time.perf_counter(), time.process_time()
            gen = self.generate(key, angles, s)
            out[f"sample_s_per_clip_{tag}"] = (time.perf_counter() - t0) / n
            out[f"sample_cpu_s_per_clip_{tag}"] = (time.process_time() - c0) / n
            sc = self.frame_scores(key, gen, angles, truth)
            self._put(out, tag, sc)
            gen_w = gen if s == 0 else self.generate(key, wrong, s)           # s = 0: u is not seen
            sw = self.frame_scores(key, gen_w, wrong)
            out[f"angle_err_wrong_{tag}"] = float(sw["angle_err"].mean())
            out[f"angle_err_wrong_std_{tag}"] = float(sw["angle_err"].std())
            out[f"agree_wrong_{tag}"] = float(sw["agree"].mean())
            out[f"wrong_vs_clip_{tag}"] = float(angle_error(sw["angles"], angles.double()).mean())
            detail["errors"][own][f"s = {s:g}"] = sc["angle_err"]
            detail["errors"][other][f"s = {s:g}"] = sw["angle_err"]
            detail["curves"]["agree"][f"s = {s:g}"] = sc["agree"]
            if "fd" in sc:
                detail["curves"]["fd"][f"s = {s:g}"] = sc["fd"]
        self._test_detail = detail
        return out

    def _put(self, out: dict, tag: str, sc: dict[str, torch.Tensor]) -> None:
        out[f"angle_err_{tag}"] = float(sc["angle_err"].mean())
        out[f"angle_err_std_{tag}"] = float(sc["angle_err"].std())
        out[f"speed_{tag}"] = float(sc["speed"].mean())
        out[f"agree_{tag}"] = float(sc["agree"].mean())
        out[f"agree_min_{tag}"] = float(sc["agree"].min())
        for h in range(self.F):
            out[f"agree_{tag}_h{h + 1}"] = float(sc["agree"][h])
        if "fd" in sc:
            out[f"fd_{tag}"] = float(sc["fd"].mean())
            for h in range(self.F):
                out[f"fd_{tag}_h{h + 1}"] = float(sc["fd"][h])

    def evaluate(self, split):
        clips, angles = self.fixed(split)
        net = self.model.sampling_net
        g = torch.Generator().manual_seed(0)                                    # the same t, ε every time
        total = 0.0
        with torch.no_grad():
            for c in range(0, len(angles), 256):
                part = Clips(*(getattr(clips, f)[c:c + 256] for f in ("frames", "positions", "centres",
                                                                     "sources", "labels")))
                batch = self.as_batch(part, angles[c:c + 256])
                t, noise = (flow_matching_draw(batch["future"], g) if self.flow
                            else ddpm_draw(batch["future"], self.schedule.to(device="cpu"), g))
                batch = {k: v.to(self.device) for k, v in {**batch, "t": t, "noise": noise}.items()}
                total += self.loss(net, batch).item() * len(t)
        out = {"loss": total / len(angles)}
        if split == "test":
            out.update(self._test())
        elif self.cfg.model.val_sample_clips:
            k = min(self.cfg.model.val_sample_clips, len(angles))
            key = clips.frames[:k, 0, 0]
            sc = self.frame_scores(key, self.generate(key, angles[:k], 1.0), angles[:k])
            out.update(angle_err_s1=float(sc["angle_err"].mean()), angle_err_std_s1=float(sc["angle_err"].std()),
                       agree_s1=float(sc["agree"].mean()))
        return out

    # ------------------------------------------------------------------ figures
    def figures(self, out_dir: Path):
        from genmodels.video.plots import save_prediction_frames, save_prediction_gif
        from genmodels.video.plots_i2v import save_angle_histogram, save_brush_tracks, save_per_frame
        m = self.cfg.model
        if self._test_detail is None:
            self._test()
        clips, angles = self.fixed("test")
        n = min(m.n_figure_clips, len(angles))
        key = clips.frames[:n, 0, 0]
        s = m.figure_scale
        rows = {"truth (own direction)": clips.frames[:n, 1:],
                "no brush (s=0)": self.generate(key, angles[:n], 0.0)[:, :, None]}
        for a, label in BRUSH.items():
            rows[f"{label}, s={s:g}"] = self.generate(key, torch.full((n,), a, dtype=torch.float64), s)[:, :, None]
        context = clips.frames[:n, :1]                                          # (n, 1, 1, H, W)
        compass = torch.arange(0.0, 360.0, 45.0, dtype=torch.float64)          # 8 requests per key frame
        D = len(compass)
        keys = key.repeat_interleave(D, 0)                                      # (n·D, H, W)
        gen = self.generate(keys, compass.repeat(n), s)                         # (n·D, F, H, W)
        both = torch.cat([keys[:, None], gen], 1).clamp(min=0).double()
        tracks = centre_of_mass(both).view(n, D, self.F + 1, 2)
        d = self._test_detail
        return [save_prediction_frames(context, rows, out_dir / "brush_frames.png", show_context=1),
                *save_prediction_gif(context, rows, out_dir / "brush.gif", fps=m.gif_fps),
                save_angle_histogram(d["errors"], out_dir / "angle_errors.png"),
                save_per_frame(d["curves"], out_dir / "per_frame.png"),
                save_brush_tracks(key, compass, tracks, float(sum(self.data.speed) / 2),
                                  out_dir / "brush_tracks.png",
                                  title=f"8 requested directions from each held-out key frame (grey arrows, "
                                        f"mean speed × {self.F} frames), s = {s:g};\ncolour: the digit's "
                                        f"centre tracked through the generated frames")]
