"""Figures of the speech corpus (a spectrogram with its phone and character alignment drawn on it),
of recognition (the decoder's cross-attention over the frames) and of text-to-speech (the
phone-to-frame alignment of the length regulator, real against predicted durations) and of voice
cloning (the classifier's verdict against the seconds of adaptation audio)."""

from __future__ import annotations

from pathlib import Path

from genmodels.audio.plots import log_spectrogram_db
from genmodels.plotting import plt, save_figure  # Agg backend, set once there

__all__ = ["plot_alignment", "plot_clone_curve", "plot_cross_attention", "plot_duration_alignment"]


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


def plot_clone_curve(rows: list[dict], baselines: list[dict], variants: list[str],
                     path: str | Path, control: dict | None = None, target: float = 0.9) -> Path:
    """Voice cloning: the fraction of a clone's sentences the speaker classifier assigns to the
    cloned voice against the seconds of adaptation audio (log axis), one colour per voice, the
    mean over seeds with error bars from the lowest to the highest seed; one panel per
    classifier variant. Dotted: the un-adapted mean embedding and the nearest training voice's
    (per voice, drawn at the left edge); grey: the control (training voices through the TTS)."""
    if not rows:
        raise ValueError("rows: need at least one clone result")
    voices = list(dict.fromkeys(r["voice"] for r in rows))
    budgets = sorted({r["budget_s"] for r in rows})
    fig, axes = plt.subplots(1, len(variants), figsize=(5.2 * len(variants), 5.0), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes[0], variants):
        for k, v in enumerate(voices):
            c = colours[k % len(colours)]
            mean, lo, hi, secs = [], [], [], []
            for b in budgets:
                accs = [r[f"acc_{name}"] for r in rows if r["voice"] == v and r["budget_s"] == b]
                sec = [r["seconds"] for r in rows if r["voice"] == v and r["budget_s"] == b]
                mean.append(sum(accs) / len(accs))
                # clipped at 0: equal accuracies over the seeds can leave a mean one rounding
                # step outside [min, max] (3 x 28/30), and errorbar refuses a negative bar
                lo.append(max(0.0, mean[-1] - min(accs)))
                hi.append(max(0.0, max(accs) - mean[-1]))
                secs.append(sum(sec) / len(sec))
            ax.errorbar(secs, mean, yerr=[lo, hi], color=c, marker="o", capsize=3,
                        label=f"{v} (seeds: min–max)")
            for b in baselines:
                if b["voice"] == v:
                    ax.scatter([budgets[0] * 0.6], [b[f"mean_acc_{name}"]], color=c, marker="x")
                    ax.scatter([budgets[0] * 0.6], [b[f"nearest_acc_{name}"]], color=c, marker="s",
                               facecolors="none")
        if control is not None and name in control:
            ax.axhline(control[name], color="0.6", lw=1, label=f"control: training voices "
                                                                f"through the TTS ({control[name]:.0%})")
        ax.axhline(target, color="k", ls=":", lw=0.8, label=f"target {target:.0%}")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
        ax.set_xticks(budgets)
        ax.set_xticklabels([f"{b:g}" for b in budgets])
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("adaptation audio (s); x: mean embedding, □: nearest training voice")
        ax.set_ylabel("clone's sentences assigned to the voice")
        ax.set_title(f"classifier: {name}", fontsize=10)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    return save_figure(fig, path)
