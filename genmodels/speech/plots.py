"""Figures of the speech corpus (a spectrogram with its phone and character alignment drawn on it),
of recognition (the decoder's cross-attention over the frames) and of text-to-speech (the
phone-to-frame alignment of the length regulator, real against predicted durations)."""

from __future__ import annotations

from pathlib import Path

from genmodels.audio.plots import log_spectrogram_db
from genmodels.plotting import plt, save_figure  # Agg backend, set once there

__all__ = ["plot_alignment", "plot_cross_attention", "plot_duration_alignment"]


def plot_alignment(utterances: list, path: str | Path, n_fft: int = 256, hop_length: int = 64,
                   title: str | None = None) -> Path:
    """One row per utterance: its log spectrogram, the phone boundaries as lines with the phone
    names above, the characters of the transcript under the time axis at their aligned centres,
    and the f0 track it was rendered with (dashed, ×10 so that it shows against the formants)."""
    if not utterances or any(getattr(u, "phones", None) is None for u in utterances):
        raise ValueError("utterances: need a non-empty list of utterances with a phone alignment")
    fig, axes = plt.subplots(len(utterances), 1, figsize=(12, 3.1 * len(utterances)), squeeze=False)
    for ax, u in zip(axes[:, 0], utterances):
        sr = u.sample_rate
        db = log_spectrogram_db(u.audio, n_fft, hop_length)
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 70,
                  vmax=db.max(), extent=(0, u.audio.shape[0] / sr, 0, sr / 2))
        for k, (phone, a, b) in enumerate(u.phones):
            ax.axvline(a / sr, color="w", lw=0.6, alpha=0.8)
            ax.text((a + b) / 2 / sr, sr / 2 * (1.02 + 0.05 * (k % 2)), phone, ha="center",
                    va="bottom", fontsize=7, clip_on=False)
        for c, (a, b) in zip(u.text, u.chars):
            ax.text((a + b) / 2 / sr, -0.13 * sr / 2, "␣" if c == " " else c, ha="center",
                    va="top", fontsize=8, color="tab:blue" if a < b else "tab:red",
                    clip_on=False)
        if u.f0 is not None:
            t = [i / sr for i in range(0, u.f0.shape[0], hop_length)]
            f = u.f0[::hop_length].numpy() * 10
            ax.plot(t, [v if v > 0 else float("nan") for v in f], "c--", lw=0.9)
        ax.set_ylabel(f"{u.speaker}: Hz", fontsize=8)
        ax.set_xlim(0, u.audio.shape[0] / sr)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("time (s)   [characters under the axis at their aligned centre; red: "
                           "silent letter, zero duration]", fontsize=8, labelpad=16)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=100)


def plot_cross_attention(weights, tokens: list[str], frame_seconds: float, path: str | Path,
                         title: str | None = None) -> Path:
    """Cross-attention weights ``[len(tokens), S]`` as an image: one row per output token, one
    column per encoder position (``frame_seconds`` apart); a good recogniser draws a diagonal."""
    if getattr(weights, "ndim", 0) != 2 or weights.shape[0] != len(tokens):
        raise ValueError(f"weights: expected [len(tokens)={len(tokens)}, S], got "
                         f"{list(getattr(weights, 'shape', []))}")
    if not frame_seconds > 0:
        raise ValueError(f"frame_seconds: must be > 0, got {frame_seconds}")
    L, S = weights.shape
    fig, ax = plt.subplots(figsize=(min(14, 2 + S * 0.08), min(12, 1.5 + L * 0.18)))
    ax.imshow(weights, origin="upper", aspect="auto", cmap="viridis",
              extent=(0, S * frame_seconds, L - 0.5, -0.5))
    ax.set_yticks(range(L))
    ax.set_yticklabels(["␣" if t == " " else t for t in tokens], fontsize=7)
    ax.set_xlabel("time (s) of the encoder position")
    ax.set_ylabel("output character")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, dpi=100)


def plot_duration_alignment(phones: list[str], true_durations, predicted_durations,
                            frame_seconds: float, path: str | Path,
                            title: str | None = None) -> Path:
    """The length regulator's alignment, phones × frames: the real durations as filled cells
    (the matrix a duration-based TTS expands its phone states with), the predicted ones as red
    bars over them; a perfect duration predictor draws the bars on the cells."""
    import numpy as np

    true_d = np.asarray(true_durations, dtype=int)
    pred_d = np.asarray(predicted_durations, dtype=int)
    if not (len(phones) == len(true_d) == len(pred_d)) or not len(phones):
        raise ValueError(f"phones: expected one true and one predicted duration per phone, got "
                         f"{len(phones)} phones, {len(true_d)} and {len(pred_d)} durations")
    if not frame_seconds > 0:
        raise ValueError(f"frame_seconds: must be > 0, got {frame_seconds}")
    K, T = len(phones), int(max(true_d.sum(), pred_d.sum()))
    image = np.zeros((K, max(T, 1)))
    ends = np.cumsum(true_d)
    for k, (a, b) in enumerate(zip(ends - true_d, ends)):
        image[k, a:b] = 1.0
    fig, ax = plt.subplots(figsize=(min(14, 2 + T * 0.03), min(12, 1.5 + K * 0.16)))
    ax.imshow(image, origin="upper", aspect="auto", cmap="Greys", vmin=0, vmax=1.6,
              extent=(0, T * frame_seconds, K - 0.5, -0.5))
    pend = np.cumsum(pred_d)
    for k, (a, b) in enumerate(zip(pend - pred_d, pend)):
        ax.plot([a * frame_seconds, b * frame_seconds], [k, k], color="tab:red", lw=2.2,
                solid_capstyle="butt")
    ax.set_yticks(range(K))
    ax.set_yticklabels(phones, fontsize=6)
    ax.set_xlabel(f"time (s); grey: real durations ({int(true_d.sum())} frames), red: predicted "
                  f"({int(pred_d.sum())} frames)")
    ax.set_ylabel("phone")
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, dpi=100)
