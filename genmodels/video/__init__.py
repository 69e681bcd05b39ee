"""Video: the ConvLSTM cell (eqs. 2.16–2.21 with convolutions) and the frame-quality measures
(PSNR, SSIM) of the chapter's workflow; moving digits (clips with ground-truth positions), the
ConvLSTM frame predictor, and the baselines and tracker it is scored against. The training task
is :mod:`genmodels.video.task` (``experiment=video_predict_digits``); image-to-video with a motion
brush (flow matching, or a DDPM, from one key frame and a direction, :mod:`genmodels.video.i2v`) is
:mod:`genmodels.video.task_i2v` (``experiment=i2v_digits``); frame interpolation and
super-resolution (:mod:`genmodels.video.frames`: the cross-fade and bicubic baselines and the
residual U-Net) are :mod:`genmodels.video.task_frames` (``experiment=interp_digits``,
``sr_fashion_x2``, ``sr_fashion_x4``, ``sr_digits_x2``)."""

from genmodels.video.baselines import (centre_of_mass, copy_last, estimate_shift, shift_frames,
                                       shift_last)
from genmodels.video.conv_lstm import conv_lstm_cell
from genmodels.video.data import Clips, MovingDigits, load_moving_digits, render_clips
from genmodels.video.i2v import (DirectionUNet, angle_error, digit_crops, direction_eps_model,
                                 direction_vector, fitted_velocity, motion_angle, straight_clips,
                                 tracked_angles)
from genmodels.video.frames import (ResidualUNet, bicubic_upsample, crossfade, downsample,
                                    middle_triplets)
from genmodels.video.measures import gaussian_window, psnr, ssim
from genmodels.video.models import ConvLSTMLayer, ConvLSTMPredictor

__all__ = ["conv_lstm_cell", "psnr", "ssim", "gaussian_window",
           "Clips", "MovingDigits", "load_moving_digits", "render_clips",
           "ConvLSTMLayer", "ConvLSTMPredictor",
           "copy_last", "shift_last", "estimate_shift", "shift_frames", "centre_of_mass",
           "crossfade", "middle_triplets", "downsample", "bicubic_upsample", "ResidualUNet",
           "straight_clips", "direction_vector", "motion_angle", "fitted_velocity", "angle_error",
           "tracked_angles", "digit_crops", "DirectionUNet", "direction_eps_model"]
