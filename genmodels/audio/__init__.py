"""Audio: MFCC features (2.30), voice conversion (2.31–2.33), μ-law and WaveNet (2.34), spectral
subtraction (2.35), separation, restoration and enhancement (2.36–2.38), measures.

Modules: ``stft`` (framing, Hann window, STFT / inverse STFT shared by everything here),
``features`` (mel filterbank, decibels, DCT-II, MFCC), ``measures`` (μ-law, SI-SDR, MCD, LSD),
``enhancement`` (spectral subtraction), ``wavenet`` (the WaveNet module), ``vocoder`` (WaveNet
conditioned on MFCC frames), ``lpc`` (linear prediction from MFCC frames, the vocoder's noise
shaping), ``voice_conversion`` (SpeechEncoder, SpeechDecoder,
VoiceConverter), ``separation`` (MaskNet, WaveUNet, permutation-invariant SI-SDR), ``degrade``
(noise, clipping, gaps), ``corpus`` (the synthetic parallel corpus, WAV folders), ``plots``; the
trainer tasks are in ``task*.py`` and their schemas in ``config.py``.
"""

from genmodels.audio.corpus import (SyntheticSpeechCorpus, load_wav_folder, synthesize_corpus,
                                    wav_folder_clips)
from genmodels.audio.degrade import colored_noise, drop_gaps, hard_clip, mix_at_snr
from genmodels.audio.enhancement import noise_magnitude, spectral_subtraction
from genmodels.audio.features import (dct_matrix, fft_frequencies, hz_to_mel, mel_filterbank,
                                      mel_frequencies, mel_to_hz, mfcc, power_to_db)
from genmodels.audio.lpc import levinson_durbin, lpc_analysis, lpc_from_mfcc, lpc_synthesis
from genmodels.audio.measures import (log_spectral_distance, mel_cepstral_distortion,
                                      mu_law_compress, mu_law_decode, mu_law_encode,
                                      mu_law_expand, si_sdr)
from genmodels.audio.separation import MaskNet, WaveUNet, permutation_invariant_si_sdr
from genmodels.audio.stft import hann_window, istft, stft, stft_power
from genmodels.audio.voice_conversion import SpeechDecoder, SpeechEncoder, VoiceConverter
from genmodels.audio.wavenet import WaveNet

__all__ = [
    # SPEC names
    "mfcc", "mel_filterbank", "mu_law_encode", "mu_law_decode", "WaveNet",
    "spectral_subtraction", "si_sdr", "mel_cepstral_distortion",
    "SpeechEncoder", "SpeechDecoder", "VoiceConverter",
    # 2.36-2.38 models and the separation loss
    "MaskNet", "WaveUNet", "permutation_invariant_si_sdr",
    # data and degradations
    "synthesize_corpus", "SyntheticSpeechCorpus", "load_wav_folder", "wav_folder_clips",
    "colored_noise", "mix_at_snr", "hard_clip", "drop_gaps", "log_spectral_distance",
    # helpers
    "stft", "istft", "stft_power", "hann_window", "power_to_db", "dct_matrix", "hz_to_mel",
    "mel_to_hz", "mel_frequencies", "fft_frequencies", "mu_law_compress", "mu_law_expand",
    "noise_magnitude", "levinson_durbin", "lpc_from_mfcc", "lpc_analysis", "lpc_synthesis",
]
