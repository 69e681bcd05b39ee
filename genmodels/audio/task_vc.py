"""Voice conversion (eqs. 2.31–2.33) trained with the generic trainer on the parallel corpus.

Speaker A's MFCC frames are mapped to speaker B's frames of the same utterance: because the
synthetic speakers say every utterance with the same phones and durations, frame t of A and
frame t of B carry the same phone, and B's real features are the ground truth. The loss is the
mean squared error in standardised feature units, plus an auto-encoding term on B; the reported
measure is MCD (dB) to B's features on held-out utterances, against the unconverted A features
and against a per-coefficient mean/variance mapping (the classic linear baseline).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from genmodels.audio.plots import plot_audio_panels, write_wav
from genmodels.audio.task_base import AudioTask
from genmodels.plotting import save_figure
from genmodels.audio.voice_conversion import VoiceConverter, mcd_db
from genmodels.train.config import ConfigError
from genmodels.train.task import batch_indices

__all__ = ["VoiceConversionTask"]


class VoiceConversionTask(AudioTask):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        if not self.is_synthetic:
            raise ConfigError("data: voice conversion needs parallel utterances with ground truth "
                              "(data=synthetic_speech); a WAV folder has no parallel speakers")
        m = cfg.model
        try:
            self.src, self.tgt = data.speaker_index(m.source), data.speaker_index(m.target)
        except ValueError as e:
            raise ConfigError(f"model.source/model.target: {e} (raise data.speakers)") from None
        # features of every split, computed once: {split: (F_A [U, D, T], F_B [U, D, T])}
        self.feats = {}
        for split in ("train", "val", "test"):
            audio = data.parallel(split)
            self.feats[split] = (self.features(audio[self.src]).to(device),
                                 self.features(audio[self.tgt]).to(device))
        model = VoiceConverter(m.n_mfcc, hidden=m.hidden, layers=m.layers,
                               kernel_size=m.kernel_size, conversion_layers=m.conversion_layers)
        model.set_statistics(*[f.cpu() for f in self.feats["train"]])
        self.model = model.to(device)

    def draw(self, step):
        src, tgt = self.feats["train"]
        idx = batch_indices(len(src), self.cfg.trainer.batch_size, step, self.cfg.seed, self.device)
        return {"f_a": src[idx], "f_b": tgt[idx]}

    def training_step(self, step, batch, optimize):
        f_a, f_b = batch["f_a"], batch["f_b"]
        target = self.model.normalize_target(f_b)
        convert_loss = F.mse_loss(self.model.convert_normalized(f_a), target)
        recon_loss = F.mse_loss(self.model.reconstruct_normalized(f_b), target)
        loss = convert_loss + self.cfg.model.recon_weight * recon_loss
        optimize(loss)
        return {"loss": loss.item(), "convert_mse": convert_loss.item(),
                "recon_mse": recon_loss.item()}

    def _affine_baseline(self, f_a: torch.Tensor) -> torch.Tensor:
        """Per-coefficient mean/variance mapping of A's statistics onto B's."""
        m = self.model
        return (f_a - m.source_mean) / m.source_std * m.target_std + m.target_mean

    def evaluate(self, split):
        f_a, f_b = self.feats[split]
        converted = self.model(f_a)
        mcd_conv = mcd_db(converted, f_b).mean().item()
        mcd_src = mcd_db(f_a, f_b).mean().item()
        return {"mcd_converted": mcd_conv, "mcd_unconverted": mcd_src,
                "mcd_affine": mcd_db(self._affine_baseline(f_a), f_b).mean().item(),
                "mcd_improvement": mcd_src - mcd_conv,
                "mse": F.mse_loss(self.model.convert_normalized(f_a),
                                  self.model.normalize_target(f_b)).item()}

    def figures(self, out_dir: Path):
        m = self.cfg.model
        out_dir = Path(out_dir)
        paths = []
        audio = self.data.parallel("test")                          # [S, U, N]
        f_a, f_b = self.feats["test"]
        n = min(m.n_examples, f_a.shape[0])
        for i in range(n):
            converted = self.model(f_a[i:i + 1])[0]
            length = audio.shape[-1]
            wavs = {
                "source (A)": audio[self.src, i],
                "target (B, truth)": audio[self.tgt, i],
                "B's MFCC, Griffin-Lim": self.mfcc_to_audio(f_b[i], m.griffin_lim_iters, length),
                "converted, Griffin-Lim": self.mfcc_to_audio(converted, m.griffin_lim_iters, length),
            }
            names = ["source", "target", "target_mfcc_griffinlim", "converted_griffinlim"]
            for (label, x), name in zip(wavs.items(), names):
                paths.append(write_wav(out_dir / "audio" / f"vc_example{i}_{name}.wav", x,
                                       self.sample_rate))
            mcds = {"source (A)": mcd_db(f_a[i], f_b[i]).item(),
                    "converted, Griffin-Lim": mcd_db(converted, f_b[i]).item()}
            paths.append(plot_audio_panels(
                wavs, self.sample_rate, out_dir / f"vc_example{i}.png",
                title=f"voice conversion {m.source} → {m.target}, held-out utterance {i} "
                      f"(Griffin-Lim columns: MFCCs made audible)",
                n_fft=m.n_fft, hop_length=m.hop_length,
                subtitles={k: f"MCD to B = {v:.2f} dB" for k, v in mcds.items()}))
        # MFCC heat maps of the first example: A, converted, B
        if n:
            converted = self.model(f_a[:1])[0]
            mats = {"A (source)": f_a[0], "converted": converted, "B (target)": f_b[0]}
            fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
            allv = torch.cat([v[1:].flatten() for v in mats.values()])
            lo, hi = torch.quantile(allv, 0.02).item(), torch.quantile(allv, 0.98).item()
            for ax, (name, mat) in zip(axes, mats.items()):
                D, T = mat.shape
                im = ax.imshow(mat[1:].detach().cpu().numpy(), origin="lower", aspect="auto",
                               cmap="coolwarm", vmin=lo, vmax=hi, extent=(0, T, 0.5, D - 0.5))
                ax.set_title(name, fontsize=9)
                ax.set_xlabel("frame")
            axes[0].set_ylabel("MFCC coefficient (c0 left out)")
            fig.colorbar(im, ax=axes, shrink=0.8, label="dB-scale MFCC (2–98% range)")
            path = out_dir / "vc_mfcc.png"
            save_figure(fig, path, dpi=100, tight=False)
            paths.append(path)
        return paths
