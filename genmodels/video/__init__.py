"""Video: the ConvLSTM cell (eqs. 2.16–2.21 with convolutions) and the frame-quality measures
(PSNR, SSIM) of the chapter's workflow; the video models follow."""

from genmodels.video.conv_lstm import conv_lstm_cell
from genmodels.video.measures import gaussian_window, psnr, ssim

__all__ = ["conv_lstm_cell", "psnr", "ssim", "gaussian_window"]
