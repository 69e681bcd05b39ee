"""Schema of voice cloning (configs/model/clone_speaker.yaml; task genmodels/speech/task_clone.py):
a trained tts_speech run (``tts_run``) is frozen, a new speaker embedding is fitted for each
held-out voice from ``budgets`` seconds of its speech, and a speaker classifier trained on real
recordings of every voice judges the cloned speech."""

from __future__ import annotations

from dataclasses import dataclass, field

from genmodels.schema import ModelConfig, choice, positive, register_model, unit


@dataclass
class CloneConfig(ModelConfig):
    """Clone held-out voices into a frozen TTS by a new speaker embedding; judge by a classifier."""
    family: str = "clone"
    arch: str = "speaker_embedding"  # a new row of the TTS's speaker table, the rest frozen
    tts_run: str | None = None  # the tts_speech run folder (required: genmodels-train experiment=tts_speech)
    voices: list[str] | None = None  # voices to clone (held-out ones); null: the corpus's test voices
    budgets: list[float] = field(default_factory=lambda: [15.0, 30.0, 60.0, 120.0])  # seconds of adaptation audio
    seeds: int = 3                # adaptation seeds 0 … n−1: which utterances (their order) and the init noise
    # --- fitting the embedding (Adam on the TTS's own loss: frame L1 + duration MSE)
    method: str = "embedding"     # embedding: the new row alone | lora: the new row + LoRA adapters on the TTS decoder's attention and FFN weights
    lora_rank: int = 4            # lora: rank r of each adapter (alpha = r)
    lora_lr: float = 3e-3         # lora: Adam learning rate of the adapters
    adapt_steps: int = 50         # Adam steps per clone (fixed, whatever the budget)
    adapt_lr: float = 0.1         # Adam learning rate (constant)
    adapt_batch: int = 16         # utterances per step (all of them when fewer)
    init_noise: float = 0.01      # std of the seeded noise added to the mean training embedding at init
    # --- the speaker classifier (real recordings of every voice, sentences disjoint from test)
    clf_sentences: int = 60       # the corpus's validation sentences it trains on (each said by every voice)
    clf_val_sentences: int = 20   # training sentences (said by every voice) it is validated on
    clf_hidden: int = 64
    clf_dropout: float = 0.1
    variants: list[str] = field(default_factory=lambda: ["plain", "gl", "pitch"])  # classifiers: plain (all features, real recordings) | gl (all features, real recordings and their STFT → Griffin-Lim round trip) | pitch (pitch and voicing features alone, real recordings)
    # --- evaluation
    eval_sentences: int | None = None  # the first n test sentences (null: all) spoken by each clone
    control_voices: int = 2       # control: each test sentence by this many training voices through the TTS
    asr_run: str | None = None  # an asr_speech run: its CER on the clones at asr_budget (seed 0); null: skipped
    asr_mode: str = "beam_ctc"    # that ASR's decoding: greedy | beam | beam_ctc | ctc
    asr_budget: float = 60.0      # the budget whose clones the ASR reads
    samples: int = 1              # WAV pairs (clone at asr_budget, seed 0 / real recording) written with the figures

    def problems(self):
        yield from choice(self, "arch", ("speaker_embedding",))
        yield from choice(self, "asr_mode", ("greedy", "beam", "beam_ctc", "ctc"))
        yield from choice(self, "method", ("embedding", "lora"))
        yield from positive(self, "lora_rank")
        yield from positive(self, "lora_lr")
        for name in ("seeds", "adapt_steps", "adapt_lr", "adapt_batch", "clf_sentences",
                     "clf_val_sentences", "clf_hidden", "eval_sentences", "control_voices",
                     "asr_budget"):
            yield from positive(self, name)
        for name in ("init_noise", "samples"):
            yield from positive(self, name, allow_zero=True)
        yield from unit(self, "clf_dropout", high_open=True)
        if not self.budgets:
            yield "budgets", "at least one adaptation budget (seconds) is needed"
        if any(b <= 0 for b in self.budgets):
            yield "budgets", f"every budget must be > 0 seconds, got {list(self.budgets)}"
        if list(self.budgets) != sorted(set(self.budgets)):
            yield "budgets", f"must be increasing, without repeats, got {list(self.budgets)}"
        if self.asr_run is not None and self.asr_budget not in self.budgets:
            yield "asr_budget", f"must be one of budgets {list(self.budgets)}, got {self.asr_budget}"
        if not self.variants or "plain" not in self.variants:
            yield "variants", f"must include plain (the classifier on raw real audio), got {list(self.variants)}"
        if any(v not in ("plain", "gl", "pitch") for v in self.variants) or \
                len(set(self.variants)) != len(self.variants):
            yield "variants", f"distinct names among plain, gl, pitch, got {list(self.variants)}"
        if self.voices is not None and not self.voices:
            yield "voices", "null (the test voices) or at least one voice"


register_model("clone_schema", CloneConfig, family="clone",
               task="genmodels.speech.task_clone:CloneTask")
