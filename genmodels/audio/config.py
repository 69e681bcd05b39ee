"""Audio schemas for the Hydra ``data`` and ``model`` groups (configs/data/*.yaml, configs/model/*.yaml).

Data: ``synthetic_speech`` (the parallel source–filter corpus, no download) and ``wav_folder``
(your own recordings). Models: ``voice_converter`` (2.31–2.33), ``wavenet_vocoder`` (2.34) and
the ``enhancement`` family (2.35–2.38: denoise, separate, restore, enhance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from genmodels.train.config import (DataConfig, ModelConfig, choice, positive, register_data,
                                    register_model, unit)


# ------------------------------------------------------------------------------ data
@dataclass
class SyntheticSpeechConfig(DataConfig):
    """Parallel synthetic speech (genmodels/audio/corpus.py): every speaker says every utterance."""
    name: str = "synthetic_speech"
    speakers: int = 4             # how many built-in voices (A 110 Hz, B 210 Hz, C 150 Hz, D 95 Hz, E, F)
    utterances: int = 240         # scripts (phone sequences); the last ones are val/test
    val_utterances: int = 20
    test_utterances: int = 20
    seconds: float = 1.0          # length of every utterance
    sample_rate: int = 8000
    seed: int = 0                 # the corpus is a pure function of these fields
    cache_dir: Optional[str] = None  # save/load the synthesised corpus as one .npz here

    def problems(self):
        for name in ("speakers", "utterances", "seconds", "sample_rate"):
            yield from positive(self, name)
        for name in ("val_utterances", "test_utterances", "seed"):
            yield from positive(self, name, allow_zero=True)
        if self.speakers > 6:
            yield "speakers", f"at most 6 built-in voices, got {self.speakers}"
        if self.val_utterances + self.test_utterances >= self.utterances:
            yield "utterances", (f"{self.utterances} leave no training utterance after "
                                 f"{self.val_utterances} val + {self.test_utterances} test")
        if self.sample_rate < 4000:
            yield "sample_rate", f"must be >= 4000 Hz, got {self.sample_rate}"


@dataclass
class WavFolderConfig(DataConfig):
    """Your own recordings: every .wav/.flac/.ogg under ``path``, split by file."""
    name: str = "wav_folder"
    path: Optional[str] = None    # the folder (required at run time: data.path=/my/wavs)
    sample_rate: int = 8000       # files are resampled to this rate and mixed to mono
    segment_seconds: float = 1.0  # files are cut into segments of this length
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 0

    def problems(self):
        yield from positive(self, "sample_rate")
        yield from positive(self, "segment_seconds")
        yield from unit(self, "val_fraction", high_open=True)
        yield from unit(self, "test_fraction", high_open=True)
        yield from positive(self, "split_seed", allow_zero=True)


def _synthetic(cfg: SyntheticSpeechConfig):
    from genmodels.audio.corpus import synthesize_corpus
    return synthesize_corpus(speakers=cfg.speakers, utterances=cfg.utterances,
                             seconds=cfg.seconds, sample_rate=cfg.sample_rate, seed=cfg.seed,
                             val_utterances=cfg.val_utterances,
                             test_utterances=cfg.test_utterances, cache_dir=cfg.cache_dir)


def _wav_folder(cfg: WavFolderConfig):
    from genmodels.audio.corpus import wav_folder_clips
    return wav_folder_clips(cfg.path, sample_rate=cfg.sample_rate,
                            segment_seconds=cfg.segment_seconds, val_fraction=cfg.val_fraction,
                            test_fraction=cfg.test_fraction, split_seed=cfg.split_seed)


register_data("synthetic_speech_schema", SyntheticSpeechConfig, "synthetic_speech", _synthetic)
register_data("wav_folder_schema", WavFolderConfig, "wav_folder", _wav_folder)


# ------------------------------------------------------------------------------ models
@dataclass
class FeatureFields:
    """MFCC analysis shared by the conversion and vocoder models (``genmodels.audio.mfcc``)."""
    n_mfcc: int = 25
    n_mels: int = 40
    n_fft: int = 256              # 32 ms at 8 kHz
    hop_length: int = 64          # 8 ms at 8 kHz

    def feature_problems(self):
        for name in ("n_mfcc", "n_mels", "n_fft", "hop_length"):
            yield from positive(self, name)
        if self.n_mfcc > self.n_mels:
            yield "n_mfcc", f"must be <= n_mels ({self.n_mels}), got {self.n_mfcc}"
        if self.hop_length > self.n_fft // 2:
            yield "hop_length", f"must be <= n_fft // 2 ({self.n_fft // 2}), got {self.hop_length}"


@dataclass
class VoiceConversionConfig(FeatureFields, ModelConfig):
    """Eqs. 2.31–2.33: SpeechEncoder → VoiceConverter (per frame) → SpeechDecoder on MFCC frames."""
    family: str = "voice_conversion"
    arch: str = "conv"
    source: str = "A"             # speaker converted from …
    target: str = "B"             # … and to (built-in voices: A B C D E F)
    hidden: int = 64              # channels of H
    layers: int = 3               # residual conv blocks in the encoder and in the decoder
    kernel_size: int = 5          # frames of context per conv
    conversion_layers: int = 2    # hidden 1x1 layers of the per-frame conversion
    recon_weight: float = 0.5     # weight of the auto-encoding loss ‖Dec(Enc(F_B)) − F_B‖²
    n_examples: int = 3           # test utterances written as WAV + figures
    griffin_lim_iters: int = 32   # to listen to MFCCs (librosa mfcc_to_audio)

    def problems(self):
        yield from choice(self, "arch", ("conv",))
        yield from self.feature_problems()
        for name in ("hidden", "kernel_size", "conversion_layers", "griffin_lim_iters"):
            yield from positive(self, name)
        yield from positive(self, "layers", allow_zero=True)
        yield from positive(self, "recon_weight", allow_zero=True)
        yield from positive(self, "n_examples", allow_zero=True)
        if self.kernel_size % 2 == 0:
            yield "kernel_size", f"must be odd, got {self.kernel_size}"
        if self.source == self.target:
            yield "target", f"must differ from source ({self.source!r})"

    def run_problems(self, cfg):
        if cfg.data.name == "synthetic_speech":        # a WAV folder's speakers are its sub-folders
            voices = "ABCDEF"[:cfg.data.speakers]
            for key in ("source", "target"):
                if getattr(self, key) not in voices:
                    yield f"model.{key}", (f"{getattr(self, key)!r} is not one of the corpus's "
                                           f"voices {', '.join(voices)} (data.speakers="
                                           f"{cfg.data.speakers})")


@dataclass
class WaveNetVocoderConfig(FeatureFields, ModelConfig):
    """Eq. 2.34: WaveNet over μ-law levels (or companded samples), conditioned on MFCC frames."""
    family: str = "wavenet_vocoder"
    arch: str = "wavenet"
    quantization_channels: int = 256
    residual_channels: int = 32
    dilation_channels: int = 32
    skip_channels: int = 64
    kernel_size: int = 2
    n_layers: int = 8             # dilations 1, 2, …, 2^(n_layers−1) per stack
    n_stacks: int = 1
    cond_hidden: int = 64         # channels of the conditioning network (conv over frames)
    upsample: str = "repeat"      # frames → samples: repeat | linear (interpolation) | transposed
    output: str = "softmax"       # softmax (256 μ-law levels) | gaussian (companded sample, ClariNet)
    log_scale_min: float = -9.0   # gaussian: floor of log σ (companded units)
    preemphasis: float = 0.0      # α of e[n] = x[n] − α·x[n−1] modelled instead of x (0: off)
    lpc_order: int = 0            # p of the LPC predictor from the MFCCs (LPCNet); its residual is modelled (0: off)
    segment_frames: int = 16      # training crops: segment_frames · hop_length samples
    eval_clips: int = 8           # held-out utterances generated at test time
    val_clips: int = 16           # utterances for the teacher-forced validation NLL
    temperature: float = 1.0      # sampling temperature (0: argmax)
    griffin_lim_iters: int = 32   # the baseline: librosa.feature.inverse.mfcc_to_audio
    n_examples: int = 3

    def problems(self):
        yield from choice(self, "arch", ("wavenet",))
        yield from choice(self, "upsample", ("repeat", "linear", "transposed"))
        yield from choice(self, "output", ("softmax", "gaussian"))
        yield from self.feature_problems()
        for name in ("quantization_channels", "residual_channels", "dilation_channels",
                     "skip_channels", "n_layers", "n_stacks", "cond_hidden", "segment_frames",
                     "eval_clips", "val_clips", "griffin_lim_iters"):
            yield from positive(self, name)
        yield from positive(self, "temperature", allow_zero=True)
        yield from positive(self, "n_examples", allow_zero=True)
        yield from positive(self, "lpc_order", allow_zero=True)
        yield from unit(self, "preemphasis", high_open=True)
        if self.lpc_order and self.lpc_order >= self.n_fft // 2:
            yield "lpc_order", f"must be < n_fft/2 = {self.n_fft // 2}, got {self.lpc_order}"
        if self.kernel_size < 2:
            yield "kernel_size", f"must be >= 2, got {self.kernel_size}"
        if self.quantization_channels < 2:
            yield "quantization_channels", f"must be >= 2, got {self.quantization_channels}"


@dataclass
class EnhancementConfig(ModelConfig):
    """Eqs. 2.35–2.38. ``mode`` picks the degradation and the reference:

    - denoise:  speech + coloured noise at a random SNR → speech (spectral subtraction baseline);
    - separate: speaker 1 + speaker 2 → both (permutation-invariant SI-SDR loss);
    - restore:  clipped and gapped speech → speech;
    - enhance:  the output of spectral subtraction (S_processed) → speech.
    ``arch``: ``mask`` (MaskNet, STFT masks) or ``waveunet`` (residual waveform U-Net).
    """
    family: str = "enhancement"
    arch: str = "mask"
    mode: str = "denoise"
    n_fft: int = 256
    hop_length: int = 64
    hidden: int = 256             # mask: channels of the frame convolutions
    layers: int = 6               # mask: residual blocks (dilations 1, 2, 4, 8, 1, …)
    kernel_size: int = 3          # mask: frames per conv; waveunet: samples per conv
    channels: int = 48            # waveunet: channels of every level
    depth: int = 3                # waveunet: levels
    stride: int = 8               # waveunet: samples per frame of the learned encoder
    snr_low: float = -5.0         # denoise/enhance: mixture SNR range (dB)
    snr_high: float = 5.0
    gain_db: float = 2.5          # separate: speaker 2 is louder by U(−gain_db, gain_db) dB
    clip_low: float = 0.15        # restore: clipping level range (fraction of the peak)
    clip_high: float = 0.5
    n_gaps: int = 3               # restore: dropped segments per clip
    gap_ms: float = 15.0          # restore: length of each gap
    subtraction_alpha: float = 1.0  # spectral subtraction over-subtraction α
    subtraction_floor: float = 0.02  # spectral subtraction floor β
    test_items: int = 64          # held-out mixtures (fixed) for val and test metrics
    n_examples: int = 3

    def problems(self):
        yield from choice(self, "arch", ("mask", "waveunet"))
        yield from choice(self, "mode", ("denoise", "separate", "restore", "enhance"))
        for name in ("n_fft", "hop_length", "hidden", "layers", "kernel_size", "channels",
                     "depth", "stride", "gap_ms", "test_items"):
            yield from positive(self, name)
        for name in ("n_gaps", "n_examples", "subtraction_alpha", "gain_db"):
            yield from positive(self, name, allow_zero=True)
        yield from unit(self, "subtraction_floor")
        if self.hop_length > self.n_fft // 2:
            yield "hop_length", f"must be <= n_fft // 2 ({self.n_fft // 2}), got {self.hop_length}"
        if self.snr_low > self.snr_high:
            yield "snr_low", f"must be <= snr_high ({self.snr_high}), got {self.snr_low}"
        if not 0 < self.clip_high <= 1:
            yield "clip_high", f"must be in (0, 1] (a fraction of the peak), got {self.clip_high}"
        elif not 0 < self.clip_low <= self.clip_high:
            yield "clip_low", f"need 0 < clip_low <= clip_high = {self.clip_high}, got {self.clip_low}"
        if self.kernel_size % 2 == 0:
            yield "kernel_size", f"must be odd, got {self.kernel_size}"


register_model("voice_converter_schema", VoiceConversionConfig, family="voice_conversion",
               task="genmodels.audio.task_vc:VoiceConversionTask")
register_model("wavenet_vocoder_schema", WaveNetVocoderConfig, family="wavenet_vocoder",
               task="genmodels.audio.task_vocoder:VocoderTask")
register_model("enhancement_schema", EnhancementConfig, family="enhancement",
               task="genmodels.audio.task_enhance:EnhancementTask")
