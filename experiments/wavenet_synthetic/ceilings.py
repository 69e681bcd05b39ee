"""What MCD and LSD can a vocoder reach on this corpus? Scores, on the 8 held-out test clips the
task uses, signals that need no training: Griffin-Lim (the baseline), the real audio through 8-bit
μ-law (with and without pre-emphasis, and as the residual of the LPC predictor computed from the
MFCC frames, LPCNet's noise shaping), the real audio plus white noise, the modelled signal plus
white noise at a given SNR (a stand-in for a network's errors: how much each scheme hides them),
and the real utterance rendered again by the corpus's own generator with other random draws (a
perfect model of the speech that does not know the exact pitch contour or noise of the reference).

    python experiments/wavenet_synthetic/ceilings.py            # about a minute on one core
"""

from __future__ import annotations

import numpy as np
import torch
from hydra import compose, initialize_config_dir

from genmodels.audio.corpus import _synthesize_utterance, _utterance_script
from genmodels.audio.lpc import lpc_analysis, lpc_from_mfcc, lpc_synthesis
from genmodels.audio.measures import mu_law_decode, mu_law_encode
from genmodels.audio.task_vocoder import _spread
from genmodels.audio.vocoder import de_emphasis, pre_emphasis
from genmodels.train.cli import CONFIG_DIR
from genmodels.train.config import register_all, to_object
from genmodels.train.trainer import build_task


class _OtherNoise:
    """A numpy Generator whose two [speakers, N] white-noise draws (fricatives/breath and the
    noise floor) come from another stream; pitch accents, vibrato and jitter stay the same."""

    def __init__(self, rng, other, shape):
        self.rng, self.other, self.shape = rng, other, tuple(shape)

    def standard_normal(self, shape):
        src = self.other if tuple(shape) == self.shape else self.rng
        return src.standard_normal(shape)

    def __getattr__(self, name):
        return getattr(self.rng, name)


def main() -> None:
    torch.set_num_threads(1)
    register_all()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = to_object(compose("config", overrides=["experiment=wavenet_synthetic"]))
    task = build_task(cfg, torch.device("cpu"))
    m, corpus = cfg.model, task.data
    idx = _spread(len(task.audio["test"]), m.eval_clips)
    ref, feats = task.audio["test"][idx], task.feats["test"][idx]
    n_samples, sr = ref.shape[-1], task.sample_rate
    speakers, ids = corpus.speakers, corpus.ids("test")

    def score(name, est):
        mcd, lsd = task.score(est.float(), ref, feats)
        print(f"| {name} | {mcd.mean().item():.2f} | {lsd.mean().item():.2f} |", flush=True)

    def render(seed_fn):
        out = []
        for j in idx.tolist():                       # clip j = speaker j // U, utterance j % U
            s, u = j // len(ids), int(ids[j % len(ids)])
            rng = np.random.default_rng([corpus.config["seed"], u])
            script = _utterance_script(rng, n_samples, sr)
            audio, _ = _synthesize_utterance(script, speakers, n_samples, sr, seed_fn(rng, u))
            out.append(torch.from_numpy(audio[s]))
        return torch.stack(out)

    print("| signal | MCD (dB) | LSD (dB) |\n|---|---|---|")
    assert torch.equal(render(lambda rng, u: rng), ref)    # the generator reproduces the corpus
    gl = torch.stack([task.mfcc_to_audio(f, m.griffin_lim_iters, n_samples) for f in feats])
    score("Griffin-Lim from the MFCCs (the baseline)", gl)
    for channels in (256, 1024):
        score(f"real audio through {channels}-level μ-law",
              mu_law_decode(mu_law_encode(ref, channels), channels))
    for alpha in (0.85, 0.95):
        e = pre_emphasis(ref, alpha).clamp(-1, 1)
        score(f"real audio, pre-emphasis {alpha}, 256-level μ-law, de-emphasis",
              de_emphasis(mu_law_decode(mu_law_encode(e)), alpha))
    alpha = 0.85
    a = lpc_from_mfcc(feats.double(), sr, m.n_fft, m.n_mels, 16, preemphasis=alpha)
    pe = pre_emphasis(ref.double(), alpha)
    schemes = {"pre-emphasis 0.85": (pe, lambda r: de_emphasis(r, alpha)),
               "pre-emphasis 0.85 + LPC-16 residual": (
                   lpc_analysis(pe, a, m.hop_length),
                   lambda r: de_emphasis(lpc_synthesis(r, a, m.hop_length), alpha))}
    white = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for name, (e, back) in schemes.items():
        if "LPC" in name:          # pre-emphasis alone through μ-law is the row above
            score(f"real audio, {name}, 256-level μ-law",
                  back(mu_law_decode(mu_law_encode(e.clamp(-1, 1)), dtype=e.dtype)))
        rms = e.pow(2).mean(-1, keepdim=True).sqrt()
        for snr in (30, 20, 10):
            score(f"real audio, {name}, + white noise {snr} dB under the modelled signal",
                  back(e + rms * 10 ** (-snr / 20) * white))
    g = torch.Generator().manual_seed(0)
    for level in (1e-4, 1e-3):
        score(f"real audio + white noise of std {level:g}",
              ref + level * torch.randn(ref.shape, generator=g))
    shape = (len(speakers), n_samples)
    score("re-rendered: same pitch contour, new noise draws",
          render(lambda rng, u: _OtherNoise(rng, np.random.default_rng([99, u]), shape)))
    score("re-rendered: new pitch accents, vibrato phase, jitter and noise",
          render(lambda rng, u: np.random.default_rng([99, u])))


if __name__ == "__main__":
    main()
