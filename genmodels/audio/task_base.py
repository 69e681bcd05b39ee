"""What the audio tasks share: the data behind them, per-step random batches, MFCC settings.

The tasks themselves live in ``task_vc.py`` (2.31–2.33), ``task_vocoder.py`` (2.34) and
``task_enhance.py`` (2.35–2.38). Each draws its training batch from a generator seeded with
(seed, step), so a resumed run sees exactly the batches of an uninterrupted one, and builds its
held-out items once from a fixed seed, so every evaluation scores the same mixtures.
"""

from __future__ import annotations

import torch

from genmodels.audio.corpus import AudioClips, SyntheticSpeechCorpus
from genmodels.audio.features import mfcc
from genmodels.train.config import ConfigError
from genmodels.train.task import Task

__all__ = ["AudioTask", "step_generator"]


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A CPU generator that is a pure function of (seed, step, stream)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 31 + stream)


class AudioTask(Task):
    """Base of the audio tasks: ``self.sample_rate`` and ``self.clips(split) [n, N]``."""

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        if not isinstance(data, (SyntheticSpeechCorpus, AudioClips)):
            raise ConfigError(f"data: the {cfg.model.family} task needs audio "
                              f"(data=synthetic_speech or data=wav_folder), got data={cfg.data.name}")
        self.sample_rate = int(data.sample_rate)

    @property
    def is_synthetic(self) -> bool:
        return isinstance(self.data, SyntheticSpeechCorpus)

    def clips(self, split: str) -> torch.Tensor:
        return self.data.clips(split)

    def features(self, audio: torch.Tensor) -> torch.Tensor:
        """MFCC ``[..., n_mfcc, frames]`` with the model config's analysis settings."""
        m = self.cfg.model
        return mfcc(audio, self.sample_rate, n_mfcc=m.n_mfcc, n_fft=m.n_fft,
                    hop_length=m.hop_length, n_mels=m.n_mels)

    def mfcc_to_audio(self, coeffs: torch.Tensor, n_iter: int, length: int) -> torch.Tensor:
        """Griffin-Lim inversion of MFCC frames ``[D, T]`` by librosa (the listening aid and the
        vocoder baseline): mel power from the inverse DCT, NNLS onto the STFT bins, n_iter
        Griffin-Lim iterations. Returns ``[length]`` float32."""
        import librosa
        import numpy as np

        m = self.cfg.model
        # mfcc_to_audio's three steps, so that Griffin-Lim's random initial phases can be fixed
        # (librosa draws them from an unseeded np.random.default_rng, not from np.random.seed)
        mel = librosa.feature.inverse.mfcc_to_mel(coeffs.detach().double().cpu().numpy(),
                                                  n_mels=m.n_mels)
        mag = librosa.feature.inverse.mel_to_stft(mel, sr=self.sample_rate, n_fft=m.n_fft)
        y = librosa.griffinlim(mag, n_iter=n_iter, hop_length=m.hop_length, n_fft=m.n_fft,
                               length=length, random_state=0)
        return torch.from_numpy(np.ascontiguousarray(y)).float()
