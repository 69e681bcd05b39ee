"""Listenable and viewable outputs of the audio experiments: WAV files, waveforms, spectrograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genmodels.plotting import plt, save_figure  # Agg backend, set once there

__all__ = ["write_wav", "plot_audio_panels", "log_spectrogram_db"]


def write_wav(path: str | Path, audio: torch.Tensor, sample_rate: int,
              comment: str | None = None) -> Path:
    """Write mono ``audio [N]`` as 16-bit PCM, peak-limited to 0.99 (a louder clip is scaled),
    with a RIFF ``INFO`` comment (:func:`~genmodels.audio.wavfile.write_tagged_wav`): by default
    that the audio is synthetic speech made by genmodels — true of every model output and of the
    synthetic corpora; pass another ``comment`` for a user's own recordings."""
    from genmodels.audio.wavfile import SYNTHETIC_COMMENT, write_tagged_wav

    return write_tagged_wav(path, audio.detach().reshape(-1).float(), int(sample_rate),
                            comment=comment or SYNTHETIC_COMMENT)


def log_spectrogram_db(audio: torch.Tensor, n_fft: int = 256, hop_length: int = 64) -> np.ndarray:
    """20·log10 |STFT| (floored 80 dB below the peak) of ``audio [N]`` → ``[F, T]`` numpy."""
    from genmodels.audio.stft import stft

    spec = stft(audio.detach().double().cpu().reshape(-1), n_fft, hop_length).abs()
    db = 20 * torch.log10(spec.clamp(min=1e-8))
    return torch.maximum(db, db.max() - 80).numpy()


def plot_audio_panels(columns: dict[str, torch.Tensor], sample_rate: int, path: str | Path,
                      title: str | None = None, n_fft: int = 256, hop_length: int = 64,
                      subtitles: dict[str, str] | None = None) -> Path:
    """One column per named signal: waveform (top) and log spectrogram (bottom), shared colour scale."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(columns)
    specs = {k: log_spectrogram_db(v, n_fft, hop_length) for k, v in columns.items()}
    vmax = max(s.max() for s in specs.values())
    fig, axes = plt.subplots(2, len(names), figsize=(3.6 * len(names), 5.0), squeeze=False,
                             gridspec_kw={"height_ratios": [1, 2]})
    for j, name in enumerate(names):
        x = columns[name].detach().float().cpu().reshape(-1).numpy()
        t = np.arange(x.size) / sample_rate
        ax = axes[0, j]
        ax.plot(t, x, lw=0.4)
        ax.set_xlim(0, t[-1] if x.size > 1 else 1)
        ax.set_ylim(-1, 1)
        ax.set_title(name + (f"\n{subtitles[name]}" if subtitles and name in subtitles else ""),
                     fontsize=9)
        ax.tick_params(labelsize=7)
        ax = axes[1, j]
        ax.imshow(specs[name], origin="lower", aspect="auto", cmap="magma", vmin=vmax - 80,
                  vmax=vmax, extent=(0, x.size / sample_rate, 0, sample_rate / 2))
        ax.set_xlabel("time (s)", fontsize=8)
        if j == 0:
            ax.set_ylabel("frequency (Hz)", fontsize=8)
            axes[0, 0].set_ylabel("amplitude", fontsize=8)
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path, dpi=100)
    return path
