"""Speech schemas for the Hydra ``data`` group: ``speech_text`` (sentences of the embedded text
said by synthetic voices, with the phone/character alignment, or by espeak-ng voices with
``data.source=espeak``; configs/data/speech_text.yaml) and
``speech_folder`` (your recordings with transcripts; configs/data/speech_folder.yaml). Both load
a :class:`~genmodels.speech.corpus.SpeechTextCorpus`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from genmodels.schema import DataConfig, choice, positive, register_data, unit


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
