"""A WaveNet vocoder (eq. 2.34) trained with the generic trainer, against Griffin-Lim.

Training: random crops of ``segment_frames`` MFCC frames and the ``segment_frames·hop`` samples
they cover, teacher-forced NLL of the μ-law levels (softmax) or companded samples (Gaussian). Test: both vocoders get only the MFCC frames
of held-out utterances — the WaveNet samples audio from them, librosa's ``mfcc_to_audio`` inverts
them with Griffin-Lim — and both outputs are scored against the real audio: MCD of the
re-extracted MFCCs and log-spectral distance of the spectrograms.
"""

from __future__ import annotations

from pathlib import Path

import torch

from genmodels.audio.measures import log_spectral_distance
from genmodels.audio.plots import plot_audio_panels, write_wav
from genmodels.audio.task_base import AudioTask, step_generator
from genmodels.audio.vocoder import WaveNetVocoder
from genmodels.audio.voice_conversion import mcd_db
from genmodels.errors import ConfigError

__all__ = ["VocoderTask"]


def _spread(n_total: int, n: int) -> torch.Tensor:
    """``n`` indices spread evenly over ``range(n_total)`` (every speaker of a speaker-major list)."""
    n = min(n, n_total)
    return torch.linspace(0, n_total - 1, n).round().long()


class VocoderTask(AudioTask):
    progress_metric = "nll"
    ddp_find_unused_parameters = True     # the last layer's residual output feeds nothing

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        self.audio = {s: self.clips(s).clamp(-1, 1) for s in ("train", "val", "test")}
        self.feats = {s: self.features(a) for s, a in self.audio.items()}       # [n, D, T]
        n_samples = self.audio["train"].shape[-1]
        self.max_start_frame = n_samples // m.hop_length - m.segment_frames
        if self.max_start_frame < 0:
            raise ConfigError(f"model.segment_frames: {m.segment_frames} frames × hop "
                             f"{m.hop_length} exceed the clips' {n_samples} samples")
        model = WaveNetVocoder(m.n_mfcc, m.hop_length, cond_hidden=m.cond_hidden,
                               preemphasis=m.preemphasis, lpc_order=m.lpc_order,
                               sample_rate=self.sample_rate, n_fft=m.n_fft, n_mels=m.n_mels,
                               quantization_channels=m.quantization_channels,
                               residual_channels=m.residual_channels,
                               dilation_channels=m.dilation_channels,
                               skip_channels=m.skip_channels, kernel_size=m.kernel_size,
                               n_layers=m.n_layers, n_stacks=m.n_stacks, upsample=m.upsample,
                               output=m.output, log_scale_min=m.log_scale_min)
        model.set_statistics(self.feats["train"])
        self.model = model.to(device)
        self.targets = {s: model.targets(a, self.feats[s]) for s, a in self.audio.items()}  # levels or y
        self._generated = None

    def _crops(self, split, idx, start_frames):
        """Targets ``[B, L]`` and MFCC frames ``[B, D, F]`` of crops starting at ``start_frames``."""
        m = self.cfg.model
        F, hop = m.segment_frames, m.hop_length
        frames = start_frames[:, None] + torch.arange(F)                         # [B, F]
        feats = self.feats[split][idx[:, None], :, frames].permute(0, 2, 1)      # [B, D, F]
        samples = start_frames[:, None] * hop + torch.arange(F * hop)            # [B, L]
        targets = self.targets[split][idx[:, None], samples]
        return targets.to(self.device), feats.to(self.device)

    def draw(self, step):
        """The clips and start frames of the step's crops."""
        g = step_generator(self.cfg.seed, step)
        B = self.cfg.trainer.batch_size
        idx = torch.randint(0, len(self.audio["train"]), (B,), generator=g)
        starts = torch.randint(0, self.max_start_frame + 1, (B,), generator=g)
        return {"idx": idx, "starts": starts}

    def training_step(self, step, batch, optimize):
        targets, feats = self._crops("train", batch["idx"], batch["starts"])
        loss = self.model.loss(targets, self.model.condition(feats))
        optimize(loss)
        return {"nll": loss.item()}

    def _teacher_forced_nll(self, split) -> dict[str, float]:
        """``nll``: the training loss; ``nll_8bit``: the NLL of the 8-bit μ-law levels, the same
        quantity for both outputs (equal to ``nll`` for the softmax)."""
        m = self.cfg.model
        idx = _spread(len(self.audio[split]), m.val_clips)
        cond = self.model.condition(self.feats[split][idx].to(self.device))
        return {"nll": self.model.loss(self.targets[split][idx].to(self.device), cond).item(),
                "nll_8bit": self.model.level_nll(self.audio[split][idx].to(self.device), cond,
                                                 self.feats[split][idx].to(self.device)).item()}

    def score(self, est: torch.Tensor, ref: torch.Tensor, feats: torch.Tensor):
        """Per clip, for audio ``est`` against the real ``ref [E, N]`` and its MFCC frames
        ``feats``: (MCD in dB of est's re-extracted MFCCs, log-spectral distance in dB), each ``[E]``."""
        m = self.cfg.model
        return (mcd_db(self.features(est), feats),
                log_spectral_distance(est.double(), ref.double(), m.n_fft, m.hop_length))

    def evaluate(self, split):
        out = self._teacher_forced_nll(split)
        if split != "test":
            return out
        m = self.cfg.model
        idx = _spread(len(self.audio["test"]), m.eval_clips)
        ref = self.audio["test"][idx]                                            # [E, N]
        feats = self.feats["test"][idx]
        gen = self.model.synthesize(feats.to(self.device), ref.shape[-1],
                                    generator=torch.Generator().manual_seed(self.cfg.seed),
                                    temperature=m.temperature).cpu()
        gl = torch.stack([self.mfcc_to_audio(f, m.griffin_lim_iters, ref.shape[-1]) for f in feats])
        self._generated = (idx, ref, gen, gl)
        for name, est in (("wavenet", gen), ("griffinlim", gl)):
            mcd, lsd = self.score(est, ref, feats)
            out[f"mcd_{name}"], out[f"lsd_{name}"] = mcd.mean().item(), lsd.mean().item()
        out["eval_clips"] = len(idx)
        return out

    def figures(self, out_dir: Path):
        m = self.cfg.model
        out_dir = Path(out_dir)
        if self._generated is None:
            self.evaluate("test")
        idx, ref, gen, gl = self._generated
        paths = []
        for i in range(min(m.n_examples, len(idx))):
            wavs = {"real": ref[i], "Griffin-Lim from MFCC": gl[i], "WaveNet from MFCC": gen[i]}
            sub = {}
            for (label, x), name in zip(wavs.items(), ("real", "griffinlim", "wavenet")):
                paths.append(write_wav(out_dir / "audio" / f"vocoder_example{i}_{name}.wav", x,
                                       self.sample_rate))
                if name != "real":
                    mcd, lsd = self.score(x, ref[i], self.feats["test"][idx[i]])
                    sub[label] = f"MCD {mcd.item():.2f} dB, LSD {lsd.item():.2f} dB"
            paths.append(plot_audio_panels(wavs, self.sample_rate, out_dir / f"vocoder_example{i}.png",
                                           title=f"held-out clip {int(idx[i])}: vocoders given only its MFCC frames",
                                           n_fft=m.n_fft, hop_length=m.hop_length, subtitles=sub))
        return paths
