"""Clips as files (genmodels/video/plots.py: save_animation, find_ffmpeg): the GIF always, the MP4
beside it where an ffmpeg is installed — read back by decoding it with that ffmpeg (frame count
and the brightness of each frame), not by the writer."""

import subprocess

import numpy as np
import pytest
from PIL import Image

import genmodels.video.plots as plots
from genmodels.plotting import plt

pytestmark = pytest.mark.video

LEVELS = (0.1, 0.5, 0.9)                                   # one uniform grey per frame


def _animation():
    from matplotlib.animation import FuncAnimation
    fig = plt.figure(figsize=(1.0, 1.0), dpi=50)           # 50 × 50 pixels
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    im = ax.imshow(np.full((4, 4), LEVELS[0]), cmap="gray", vmin=0, vmax=1)

    def frame(t):
        im.set_data(np.full((4, 4), LEVELS[t]))
        return [im]

    return fig, FuncAnimation(fig, frame, frames=len(LEVELS), blit=False)


def test_gif_only_without_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "find_ffmpeg", lambda: None)
    fig, anim = _animation()
    written = plots.save_animation(anim, tmp_path / "clip.gif", fps=4)
    plt.close(fig)
    assert written == [tmp_path / "clip.gif"] and not (tmp_path / "clip.mp4").exists()
    with Image.open(tmp_path / "clip.gif") as gif:
        assert gif.n_frames == len(LEVELS)
        means = []
        for i in range(gif.n_frames):
            gif.seek(i)
            means.append(np.asarray(gif.convert("L"), dtype=float).mean() / 255)
    np.testing.assert_allclose(means, LEVELS, atol=0.02)


@pytest.mark.skipif(plots.find_ffmpeg() is None, reason="no ffmpeg (apt-get install ffmpeg, or pip install imageio-ffmpeg)")
def test_mp4_beside_the_gif_decodes_to_the_frames(tmp_path):
    fig, anim = _animation()
    written = plots.save_animation(anim, tmp_path / "clip.gif", fps=4)
    plt.close(fig)
    mp4 = tmp_path / "clip.mp4"
    assert written == [tmp_path / "clip.gif", mp4] and mp4.stat().st_size > 0
    raw = subprocess.run([plots.find_ffmpeg(), "-v", "error", "-i", str(mp4), "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 50, 50)          # 50 × 50: already even
    assert len(frames) == len(LEVELS)
    np.testing.assert_allclose(frames.reshape(len(frames), -1).mean(1) / 255, LEVELS, atol=0.03)


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="^path:"):
        plots.save_animation(object(), tmp_path / "clip.mp4", fps=4)       # refused before it is used
    with pytest.raises(ValueError, match="^fps:"):
        plots.save_animation(object(), tmp_path / "clip.gif", fps=0)
