"""Audio: MFCC features (2.30), μ-law and WaveNet (2.34), spectral subtraction (2.35), measures.

Modules: ``stft`` (framing, Hann window, STFT / inverse STFT shared by everything here),
``features`` (mel filterbank, decibels, DCT-II, MFCC), ``measures`` (μ-law, SI-SDR, MCD),
``enhancement`` (spectral subtraction) and ``wavenet`` (the WaveNet module).
"""

from genmodels.audio.enhancement import noise_magnitude, spectral_subtraction
from genmodels.audio.features import (dct_matrix, fft_frequencies, hz_to_mel, mel_filterbank,
                                      mel_frequencies, mel_to_hz, mfcc, power_to_db)
from genmodels.audio.measures import (mel_cepstral_distortion, mu_law_compress, mu_law_decode,
                                      mu_law_encode, mu_law_expand, si_sdr)
from genmodels.audio.stft import hann_window, istft, stft, stft_power
from genmodels.audio.wavenet import WaveNet

__all__ = [
    # SPEC names
    "mfcc", "mel_filterbank", "mu_law_encode", "mu_law_decode", "WaveNet",
    "spectral_subtraction", "si_sdr", "mel_cepstral_distortion",
    # helpers
    "stft", "istft", "stft_power", "hann_window", "power_to_db", "dct_matrix", "hz_to_mel",
    "mel_to_hz", "mel_frequencies", "fft_frequencies", "mu_law_compress", "mu_law_expand",
    "noise_magnitude",
]
