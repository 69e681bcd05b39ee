"""Audio modification (eqs. 2.35–2.38) trained with the generic trainer, scored by SI-SDR.

One task, four modes (``model.mode``), each a degradation of clean speech and a reference:

| mode     | input                                          | reference     | baseline              |
|----------|------------------------------------------------|---------------|-----------------------|
| denoise  | speech + coloured noise, SNR ~ U(snr_low, high) | the speech    | spectral subtraction  |
| separate | speaker 1 + speaker 2 (different utterances)    | both speakers | the mixture itself    |
| restore  | speech clipped at a fraction of its peak, with gaps | the speech | the degraded input    |
| enhance  | spectral subtraction's output (S_processed)     | the speech    | that processed input  |

Training items are drawn afresh every step from a generator seeded with (seed, step); the val
and test items are fixed sets built once from held-out utterances. The loss is −SI-SDR
(permutation-invariant for separation); the reported measure is the SI-SDR improvement
SI-SDR(output, reference) − SI-SDR(input, reference) in dB, averaged over items (and sources).
"""

from __future__ import annotations

from pathlib import Path

import torch

from genmodels.audio.degrade import colored_noise, drop_gaps, hard_clip, mix_at_snr
from genmodels.audio.enhancement import spectral_subtraction
from genmodels.audio.measures import si_sdr
from genmodels.audio.plots import plot_audio_panels, write_wav
from genmodels.audio.separation import MaskNet, WaveUNet, permutation_invariant_si_sdr
from genmodels.audio.task_base import AudioTask, step_generator
from genmodels.train.config import ConfigError

__all__ = ["EnhancementTask"]

_EVAL_SEEDS = {"val": 1, "test": 2}
_CHUNK = 16


class EnhancementTask(AudioTask):
    progress_metric = "si_sdr"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        self.n_sources = 2 if m.mode == "separate" else 1
        if m.arch == "mask":
            model = MaskNet(m.n_fft, m.hop_length, self.n_sources, hidden=m.hidden,
                            layers=m.layers, kernel_size=m.kernel_size)
        else:
            if self.n_sources != 1:
                raise ConfigError("model.arch: waveunet has one output; separation needs "
                                  "model.arch=mask")
            model = WaveUNet(channels=m.channels, depth=m.depth, kernel_size=m.kernel_size,
                             stride=m.stride)
        self.model = model.to(device)
        self.clean = {s: self.clips(s) for s in ("train", "val", "test")}
        if m.mode == "separate" and any(len(c) < 2 for c in self.clean.values()):
            raise ConfigError("data: separation needs at least two clips in every split")
        self.fixed = {s: self.make_items(s, m.test_items,
                                         torch.Generator().manual_seed(cfg.seed * 1000 + k))
                      for s, k in _EVAL_SEEDS.items()}

    # ------------------------------------------------------------------ data
    def _pick_pairs(self, split, n, g):
        """Indices of two clips per item, from different speakers when the corpus has them."""
        clips = self.clean[split]
        if self.is_synthetic and self.data.audio.shape[0] > 1:
            S = self.data.audio.shape[0]
            U = len(clips) // S                                        # speaker-major layout
            s1 = torch.randint(0, S, (n,), generator=g)
            s2 = (s1 + torch.randint(1, S, (n,), generator=g)) % S     # another speaker
            u1 = torch.randint(0, U, (n,), generator=g)
            u2 = (u1 + torch.randint(1, max(U, 2), (n,), generator=g)) % U  # another utterance
            return s1 * U + u1, s2 * U + u2
        i = torch.randint(0, len(clips), (n,), generator=g)
        j = (i + torch.randint(1, len(clips), (n,), generator=g)) % len(clips)
        return i, j

    def _noisy(self, clean, g):
        """Speech + coloured noise at a random SNR, and a separate noise-only clip of it."""
        m = self.cfg.model
        B, N = clean.shape
        beta = torch.rand(B, generator=g) * 2.0                        # white … brown
        noise = colored_noise((B, 2 * N), beta, generator=g)
        snr = m.snr_low + (m.snr_high - m.snr_low) * torch.rand(B, generator=g)
        noisy = mix_at_snr(clean, noise[:, :N], snr)
        gain = ((noisy - clean).pow(2).sum(-1) / noise[:, :N].pow(2).sum(-1)).sqrt()
        return noisy, gain[:, None] * noise[:, N:]

    def make_items(self, split: str, n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
        """``{"input": [n, N], "refs": [n, S, N]}`` (+ ``"noisy"``, ``"noise"`` where noise is used)."""
        m = self.cfg.model
        clips = self.clean[split]
        if m.mode == "separate":
            i, j = self._pick_pairs(split, n, g)
            s1, s2 = clips[i], clips[j]
            gain_db = (torch.rand(n, generator=g) * 2 - 1) * m.gain_db
            e1, e2 = s1.pow(2).sum(-1), s2.pow(2).sum(-1).clamp(min=1e-12)
            s2 = s2 * ((e1 / e2) * 10 ** (gain_db / 10)).sqrt()[:, None]
            refs = torch.stack([s1, s2], dim=1)
            return {"input": refs.sum(1), "refs": refs}
        clean = clips[torch.randint(0, len(clips), (n,), generator=g)]
        if m.mode == "restore":
            level = m.clip_low + (m.clip_high - m.clip_low) * torch.rand(n, generator=g)
            degraded, _ = drop_gaps(hard_clip(clean, level), m.n_gaps,
                                    max(1, int(m.gap_ms / 1000 * self.sample_rate)), g)
            return {"input": degraded, "refs": clean[:, None]}
        noisy, noise = self._noisy(clean, g)
        items = {"input": noisy, "refs": clean[:, None], "noisy": noisy, "noise": noise}
        if m.mode == "enhance":
            items["input"] = self._subtract(noisy, noise)
        return items

    def _subtract(self, noisy, noise):
        m = self.cfg.model
        return spectral_subtraction(noisy, noise, m.n_fft, m.hop_length,
                                    alpha=m.subtraction_alpha, floor=m.subtraction_floor)

    # ------------------------------------------------------------------ model
    def estimate(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, N] → [B, S, N]``."""
        out = self.model(x.to(self.device))
        return out if out.dim() == 3 else out[:, None]

    def score(self, est, refs):
        """Per-item SI-SDR (dB, averaged over sources) and the matched estimates ``[B, S, N]``."""
        if self.n_sources == 1:
            return si_sdr(est[:, 0], refs[:, 0]), est
        best, perm = permutation_invariant_si_sdr(est, refs)
        return best, torch.gather(est, 1, perm[:, :, None].expand_as(est))

    def draw(self, step):
        items = self.make_items("train", self.cfg.trainer.batch_size,
                                step_generator(self.cfg.seed, step))
        return {"input": items["input"], "refs": items["refs"]}

    def training_step(self, step, batch, optimize):
        refs = batch["refs"].to(self.device)
        sdr, _ = self.score(self.estimate(batch["input"]), refs)
        loss = -sdr.mean()
        optimize(loss)
        return {"loss": loss.item(), "si_sdr": sdr.mean().item()}

    def evaluate(self, split):
        items = self.fixed[split]
        outs, ins, ss = [], [], []
        for k in range(0, len(items["input"]), _CHUNK):
            x = items["input"][k:k + _CHUNK]
            refs = items["refs"][k:k + _CHUNK].to(self.device)
            outs.append(self.score(self.estimate(x), refs)[0].cpu())
            ins.append(si_sdr(x[:, None].expand_as(refs).to(refs), refs).mean(-1).cpu())
            if "noisy" in items and self.cfg.model.mode == "denoise":
                sub = self._subtract(items["noisy"][k:k + _CHUNK], items["noise"][k:k + _CHUNK])
                ss.append(si_sdr(sub, refs[:, 0].cpu()))
        out_sdr, in_sdr = torch.cat(outs), torch.cat(ins)
        res = {"si_sdr_in": in_sdr.mean().item(), "si_sdr_out": out_sdr.mean().item(),
               "si_sdr_improvement": (out_sdr - in_sdr).mean().item(),
               "si_sdr_improvement_median": (out_sdr - in_sdr).median().item()}
        if ss:
            res["si_sdr_improvement_spectral_subtraction"] = (torch.cat(ss) - in_sdr).mean().item()
        if "noisy" in items and self.cfg.model.mode == "enhance":
            noisy_sdr = si_sdr(items["noisy"], items["refs"][:, 0])
            res["si_sdr_noisy"] = noisy_sdr.mean().item()
            res["si_sdr_improvement_over_noisy"] = (out_sdr - noisy_sdr).mean().item()
        return res

    # ------------------------------------------------------------------ outputs
    def figures(self, out_dir: Path):
        m = self.cfg.model
        out_dir = Path(out_dir)
        items = self.fixed["test"]
        paths = []
        for i in range(min(m.n_examples, len(items["input"]))):
            x, refs = items["input"][i:i + 1], items["refs"][i:i + 1]
            sdr, est = self.score(self.estimate(x).cpu(), refs)
            in_sdr = si_sdr(x[:, None].expand_as(refs), refs).mean().item()
            cols = {"input": x[0]}
            sub = {"input": f"SI-SDR {in_sdr:.1f} dB"}
            if m.mode == "denoise":
                s = self._subtract(items["noisy"][i:i + 1], items["noise"][i:i + 1])[0]
                cols["spectral subtraction"] = s
                sub["spectral subtraction"] = f"SI-SDR {si_sdr(s, refs[0, 0]).item():.1f} dB"
            for k in range(self.n_sources):
                name = "output" if self.n_sources == 1 else f"output {k + 1}"
                cols[name] = est[0, k]
                sub[name] = f"SI-SDR {si_sdr(est[0, k], refs[0, k]).item():.1f} dB"
            for k in range(self.n_sources):
                cols["reference" if self.n_sources == 1 else f"reference {k + 1}"] = refs[0, k]
            for name, sig in cols.items():
                fname = name.replace(" ", "_")
                paths.append(write_wav(out_dir / "audio" / f"{m.mode}_example{i}_{fname}.wav", sig,
                                       self.sample_rate))
            paths.append(plot_audio_panels(cols, self.sample_rate, out_dir / f"{m.mode}_example{i}.png",
                                           title=f"{m.mode}, held-out item {i}: SI-SDR improvement "
                                                 f"{sdr.item() - in_sdr:+.1f} dB",
                                           n_fft=m.n_fft, hop_length=m.hop_length, subtitles=sub))
        return paths
