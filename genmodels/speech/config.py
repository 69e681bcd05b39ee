"""Speech schemas for the Hydra ``data`` group: ``speech_text`` (sentences of the embedded text
said by synthetic voices, with the phone/character alignment, or by espeak-ng voices with
``data.source=espeak``; configs/data/speech_text.yaml) and
``speech_folder`` (your recordings with transcripts; configs/data/speech_folder.yaml). Both load
a :class:`~genmodels.speech.corpus.SpeechTextCorpus`. The ``model`` group's ``asr`` family
(:class:`ASRConfig`) recognises their speech, its ``tts`` family (:class:`TTSConfig`) speaks
text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from genmodels.schema import (DataConfig, ModelConfig, choice, positive, register_data,
                              register_model, unit)


@dataclass
class SpeechTextConfig(DataConfig):
    """Phrases of the embedded text said by many voices, split by sentence and by voice."""
    name: str = "speech_text"
    source: str = "synthetic"     # synthetic (the library's voices) | espeak (apt-get install espeak-ng)
    voices: int = 16              # built-in voices v01…v24 (espeak: e01…e24), the first n
    val_voices: int = 2           # held out for validation …
    test_voices: int = 3          # … and for test (never the lowest or highest voice)
    sentences: int = 800          # phrases drawn from the embedded text
    val_sentences: int = 60       # said by every validation voice
    test_sentences: int = 60      # said by every test voice
    voices_per_sentence: int = 2  # training voices saying each training sentence
    min_chars: int = 12           # phrase length range, characters
    max_chars: int = 40
    sample_rate: int = 8000
    seed: int = 0                 # the corpus is a pure function of these fields
    cache_dir: Optional[str] = None  # save/load the rendered corpus as one .npz here

    def problems(self):
        yield from choice(self, "source", ("synthetic", "espeak"))
        for name in ("voices", "test_voices", "sentences", "test_sentences",
                     "voices_per_sentence", "min_chars", "max_chars", "sample_rate"):
            yield from positive(self, name)
        for name in ("val_voices", "val_sentences", "seed"):
            yield from positive(self, name, allow_zero=True)
        if self.voices > 24:
            yield "voices", f"at most 24 built-in voices, got {self.voices}"
        if self.val_voices + self.test_voices > self.voices - 3:
            yield "voices", (f"{self.voices} leave fewer than 3 training voices after "
                             f"{self.val_voices} val + {self.test_voices} test")
        if self.val_sentences + self.test_sentences >= self.sentences:
            yield "sentences", (f"{self.sentences} leave no training sentence after "
                                f"{self.val_sentences} val + {self.test_sentences} test")
        if self.min_chars > self.max_chars:
            yield "max_chars", f"must be >= min_chars ({self.min_chars}), got {self.max_chars}"
        if self.sample_rate < 4000:
            yield "sample_rate", f"must be >= 4000 Hz, got {self.sample_rate}"


@dataclass
class SpeechFolderConfig(DataConfig):
    """Your recordings with transcripts: ``name.wav`` + ``name.txt`` or a ``metadata.csv``."""
    name: str = "speech_folder"
    path: Optional[str] = None    # the folder (required at run time: data.path=/my/speech)
    sample_rate: int = 8000       # files are resampled to this rate and mixed to mono
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    split_by: str = "file"        # file | speaker (speaker = first sub-folder; held-out voices)
    split_seed: int = 0

    def problems(self):
        yield from positive(self, "sample_rate")
        yield from unit(self, "val_fraction", high_open=True)
        yield from unit(self, "test_fraction", high_open=True)
        yield from choice(self, "split_by", ("file", "speaker"))
        yield from positive(self, "split_seed", allow_zero=True)


def _speech_text(cfg: SpeechTextConfig):
    from genmodels.speech.corpus import synthesize_speech_text
    from genmodels.speech.espeak import espeak_speech_text
    make = espeak_speech_text if cfg.source == "espeak" else synthesize_speech_text
    return make(
        voices=cfg.voices, sentences=cfg.sentences, val_sentences=cfg.val_sentences,
        test_sentences=cfg.test_sentences, val_voices=cfg.val_voices, test_voices=cfg.test_voices,
        voices_per_sentence=cfg.voices_per_sentence, min_chars=cfg.min_chars,
        max_chars=cfg.max_chars, sample_rate=cfg.sample_rate, seed=cfg.seed,
        cache_dir=cfg.cache_dir)


def _speech_folder(cfg: SpeechFolderConfig):
    from genmodels.speech.corpus import load_speech_folder
    return load_speech_folder(cfg.path, sample_rate=cfg.sample_rate, val_fraction=cfg.val_fraction,
                              test_fraction=cfg.test_fraction, split_by=cfg.split_by,
                              split_seed=cfg.split_seed)


register_data("speech_text_schema", SpeechTextConfig, "speech_text", _speech_text)
register_data("speech_folder_schema", SpeechFolderConfig, "speech_folder", _speech_folder)


# ------------------------------------------------------------------------------ recognition
@dataclass
class ASRConfig(ModelConfig):
    """Speech recognition, MFCC frames → characters (genmodels/speech/asr.py, task_asr.py):
    ``arch=transformer`` (configs/model/asr_transformer.yaml) or ``arch=lstm_ctc``, the
    bidirectional-LSTM + CTC baseline (configs/model/asr_lstm_ctc.yaml)."""
    family: str = "asr"
    arch: str = "transformer"     # transformer (encoder–decoder, eqs. 2.22–2.27) | lstm_ctc
    # --- features (eq. 2.30), per-utterance mean/variance normalised
    n_mfcc: int = 20
    n_fft: int = 256              # 32 ms at 8 kHz
    hop_length: int = 80          # 10 ms
    n_mels: int = 40
    subsample: int = 4            # conv front-end: frames per encoder position (1, 2, 4, 8)
    frontend_kernel: int = 3      # transformer: kernel of its stride-2 front-end convolutions (odd)
    # --- transformer
    d_model: int = 128
    num_heads: int = 4
    enc_layers: int = 4
    dec_layers: int = 2
    d_ff: int = 512
    label_smoothing: float = 0.1  # cross-entropy target smoothing (teacher forcing)
    ctc_weight: float = 0.3       # loss = (1 − w)·CE + w·CTC of an encoder head (joint CTC–attention); 0: CE only
    ctc_upsample: int = 1         # CTC label slots per encoder position (2: 50 per second at subsample 4)
    inter_ctc_weight: float = 0.0  # CTC term = (1 − v)·CTC(last layer) + v·CTC(layer inter_ctc_layer), same head; 0: off
    inter_ctc_layer: int = 2      # the encoder layer of the intermediate CTC loss (1 … enc_layers − 1)
    conv_kernel: int = 0          # > 0 (odd): a Conformer-style convolution module after each encoder block (opt-in; not the original architecture)
    input_scale: float = 1.0      # the projected front-end output is multiplied by this before the sinusoids are added
    # --- lstm_ctc
    lstm_hidden: int = 128        # per direction
    lstm_layers: int = 2
    dropout: float = 0.1
    # --- SpecAugment-style masking of the training features (drawn per item and step)
    freq_masks: int = 2           # bands of MFCC coefficients zeroed per utterance
    freq_width: int = 3           # each up to this many coefficients
    time_masks: int = 2           # spans of frames zeroed per utterance
    time_width: int = 20          # each up to this many frames
    # --- speed perturbation of the training features (drawn per item and step)
    speed_perturb: float = 0.0    # each utterance time-stretched to a rate uniform in [1 − s, 1 + s] (asr.time_stretch); 0: off
    # --- decoding and evaluation
    beam_width: int = 4           # beam search (test; val too with beam_on_val); 1 = greedy
    length_penalty: float = 1.0   # finished beams ranked by Σ log p / |y|^α
    rescore_ctc_weight: float = 0.3  # cer_beam_ctc: beams rescored by ((1−w)·log p_att + w·log p_CTC) / |y|^α
    joint_ctc_weight: float = 0.5  # cer_joint: one-pass beam ranked by λ·log ψ_CTC(prefix) + (1−λ)·log p_att (λ = this; 0.5 best on val)
    # --- a character language model of text alone for shallow fusion (opt-in)
    lm_weight: float = 0.0        # β > 0: a GPT over the characters trains beside the recogniser on the training transcripts + text_only_phrases (nothing of a val/test sentence); cer_joint_lm / cer_lm add β·log p_LM in the search
    lm_layers: int = 2            # its depth, width and heads
    lm_d_model: int = 128
    lm_heads: int = 4
    lm_per_item: int = 2          # LM phrases per training utterance of the batch (2 × batch_size per step)
    max_decode_chars: int = 80    # decoding stops after this many characters (or 1.5 × the longest training transcript)
    beam_on_val: bool = False     # also beam-decode at every validation (slower); always at the end and on test
    eval_utterances: Optional[int] = None  # score the first n utterances of a split (null: all)

    def problems(self):
        yield from choice(self, "arch", ("transformer", "lstm_ctc"))
        yield from choice(self, "subsample", (1, 2, 4, 8))
        for name in ("n_mfcc", "n_fft", "hop_length", "n_mels", "d_model", "num_heads",
                     "enc_layers", "dec_layers", "d_ff", "lstm_hidden", "lstm_layers",
                     "freq_width", "time_width", "beam_width", "max_decode_chars", "ctc_upsample",
                     "eval_utterances", "lm_layers", "lm_d_model", "lm_heads", "lm_per_item"):
            yield from positive(self, name)
        for name in ("freq_masks", "time_masks", "length_penalty"):
            yield from positive(self, name, allow_zero=True)
        yield from unit(self, "label_smoothing", high_open=True)
        yield from unit(self, "ctc_weight", high_open=True)
        yield from unit(self, "rescore_ctc_weight")
        yield from unit(self, "joint_ctc_weight")
        yield from unit(self, "dropout", high_open=True)
        yield from unit(self, "speed_perturb", high_open=True)
        yield from unit(self, "inter_ctc_weight", high_open=True)
        if self.inter_ctc_weight and not 1 <= self.inter_ctc_layer < self.enc_layers:
            yield "inter_ctc_layer", (f"must be 1 … enc_layers − 1 = {self.enc_layers - 1}, got "
                                      f"{self.inter_ctc_layer}")
        if self.inter_ctc_weight and not self.ctc_weight:
            yield "inter_ctc_weight", "needs the CTC head (model.ctc_weight > 0)"
        if self.conv_kernel and (self.conv_kernel < 0 or self.conv_kernel % 2 == 0):
            yield "conv_kernel", f"must be 0 (off) or an odd positive integer, got {self.conv_kernel}"
        if not self.input_scale > 0:
            yield "input_scale", f"must be > 0, got {self.input_scale}"
        if self.frontend_kernel < 1 or self.frontend_kernel % 2 == 0:
            yield "frontend_kernel", f"must be an odd positive integer, got {self.frontend_kernel}"
        if self.d_model % self.num_heads:
            yield "num_heads", f"must divide d_model={self.d_model}, got {self.num_heads}"
        if not 0 <= self.lm_weight <= 10:
            yield "lm_weight", f"must be in [0, 10] (0: no language model), got {self.lm_weight}"
        if self.lm_weight and self.arch == "transformer" and not self.ctc_weight:
            yield "lm_weight", ("the fused search is the joint CTC/attention one: it needs the CTC "
                                "head (model.ctc_weight > 0)")
        if self.lm_d_model % self.lm_heads:
            yield "lm_heads", f"must divide lm_d_model={self.lm_d_model}, got {self.lm_heads}"
        if self.n_mfcc > self.n_mels:
            yield "n_mfcc", f"must be <= n_mels={self.n_mels}, got {self.n_mfcc}"
        if self.freq_masks and self.freq_width >= self.n_mfcc:
            yield "freq_width", f"must be < n_mfcc={self.n_mfcc}, got {self.freq_width}"
        if self.hop_length > self.n_fft:
            yield "hop_length", f"must be <= n_fft={self.n_fft}, got {self.hop_length}"
        if self.length_penalty > 10:
            yield "length_penalty", f"must be <= 10, got {self.length_penalty}"


register_model("asr_schema", ASRConfig, family="asr", task="genmodels.speech.task_asr:ASRTask")


# ------------------------------------------------------------------------------ synthesis
@dataclass
class TTSConfig(ModelConfig):
    """Text-to-speech, phones → log-magnitude STFT frames → Griffin-Lim
    (genmodels/speech/tts.py, task_tts.py; configs/model/tts_fastspeech.yaml): duration-based,
    a Transformer encoder + speaker embedding, a duration predictor, the length regulator and a
    Transformer decoder over frames."""
    family: str = "tts"
    arch: str = "fastspeech"      # duration-based (length regulator on the corpus's phone times)
    # --- frames: log max(|STFT|, 1e-4), normalised per bin
    n_fft: int = 256              # 32 ms at 8 kHz
    hop_length: int = 64          # 8 ms
    # --- model
    d_model: int = 128
    num_heads: int = 2
    enc_layers: int = 3           # Transformer blocks over phones
    dec_layers: int = 2           # Transformer blocks over frames
    d_ff: int = 512
    kernel_size: int = 3          # the duration predictor's convolutions (odd)
    dropout: float = 0.1
    duration_weight: float = 1.0  # loss = L1(frames) + w · MSE(log(1 + frames per phone))
    length_buckets: bool = False  # batches of similar-length utterances (fixed groups, shuffled per epoch): less padding
    # --- vocoder
    griffin_lim_iters: int = 32
    griffin_lim_momentum: float = 0.99   # fast Griffin-Lim (0: the original algorithm)
    # --- evaluation
    eval_voices: int = 2          # each held-out sentence is said by this many training voices
    eval_utterances: Optional[int] = None  # the first n held-out utterances per split (null: all)
    mcd_mfcc: int = 13            # MFCCs (c0 left out) of the DTW-aligned MCD
    asr_run: Optional[str] = None  # an ASR run folder (asr_speech): its CER on real vs TTS; null: skipped
    asr_mode: str = "beam_ctc"    # that ASR's decoding: greedy | beam | beam_ctc | ctc
    samples: int = 3              # WAV samples (real, ceiling, TTS) written with the figures

    def problems(self):
        yield from choice(self, "arch", ("fastspeech",))
        yield from choice(self, "asr_mode", ("greedy", "beam", "beam_ctc", "ctc"))
        for name in ("n_fft", "hop_length", "d_model", "num_heads", "enc_layers", "dec_layers",
                     "d_ff", "kernel_size", "griffin_lim_iters", "eval_voices",
                     "eval_utterances", "mcd_mfcc"):
            yield from positive(self, name)
        for name in ("duration_weight", "griffin_lim_momentum", "samples"):
            yield from positive(self, name, allow_zero=True)
        yield from unit(self, "dropout", high_open=True)
        if self.d_model % self.num_heads:
            yield "num_heads", f"must divide d_model={self.d_model}, got {self.num_heads}"
        if self.kernel_size % 2 == 0:
            yield "kernel_size", f"must be odd, got {self.kernel_size}"
        if self.n_fft % 2:
            yield "n_fft", f"must be even, got {self.n_fft}"
        if self.hop_length > self.n_fft:
            yield "hop_length", f"must be <= n_fft={self.n_fft}, got {self.hop_length}"
        if self.griffin_lim_momentum > 10:
            yield "griffin_lim_momentum", f"must be <= 10, got {self.griffin_lim_momentum}"
        if self.mcd_mfcc < 2 or self.mcd_mfcc > 40:
            yield "mcd_mfcc", f"must be in 2..40 (40 mel bands; c0 is left out), got {self.mcd_mfcc}"


register_model("tts_schema", TTSConfig, family="tts", task="genmodels.speech.task_tts:TTSTask")

import genmodels.speech.config_clone  # noqa: E402,F401  (voice cloning: a new speaker embedding)
