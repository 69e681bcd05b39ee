"""Video: the frame-quality measures (PSNR, SSIM) of the chapter's workflow; the ConvLSTM and
the video models follow."""

from genmodels.video.measures import gaussian_window, psnr, ssim

__all__ = ["psnr", "ssim", "gaussian_window"]
