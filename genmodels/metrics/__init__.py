"""Sample-quality measures shared by the image generators (VAE, GAN, DDPM, score SDE): the
Fréchet distance with a hand-written PSD matrix square root, the unbiased kernel distance (KID), and the yardstick classifier in
whose feature space it is measured, with its class-coverage entropy."""

from genmodels.metrics.fd import (frechet_distance, frechet_distance_from_features, gaussian_stats,
                                  sqrtm_psd)
from genmodels.metrics.kid import kernel_distance, polynomial_kernel
from genmodels.metrics.yardstick import (Yardstick, YardstickNet, class_coverage_entropy,
                                         get_yardstick, sample_quality)

__all__ = ["sqrtm_psd", "gaussian_stats", "frechet_distance", "frechet_distance_from_features",
           "kernel_distance", "polynomial_kernel",
           "Yardstick", "YardstickNet", "get_yardstick", "class_coverage_entropy", "sample_quality"]
