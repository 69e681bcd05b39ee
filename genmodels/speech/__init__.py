"""Speech: the transcription measures (edit distance, character error rate) of the chapter's
workflow, and a speech corpus with text (sentences said by many synthetic voices through a
rule-based grapheme-to-phone step, with the phone/character alignment; or your own recordings
with transcripts); recognition (:mod:`genmodels.speech.asr`: the encoder–decoder Transformer
and an LSTM-CTC baseline, greedy and beam decoding; trained by ``task_asr``); text-to-speech (:mod:`genmodels.speech.tts`:
duration-based, a length regulator, Griffin-Lim; trained by ``task_tts``); voice cloning
(:mod:`genmodels.speech.clone`: a new speaker embedding of the frozen TTS fitted from seconds of
a held-out voice, judged by a speaker classifier; run by ``task_clone``)."""

from genmodels.speech.corpus import (VOICES, SpeechTextCorpus, Utterance, Voice, embedded_sentences,
                                     load_speech_folder, plan_speech_text, render_sentence,
                                     synthesize_speech_text)
from genmodels.speech.g2p import CHARSET, SPEECH_PHONES, g2p, normalize_text, phonemize
from genmodels.speech.measures import character_error_rate, edit_distance

__all__ = ["edit_distance", "character_error_rate", "CHARSET", "SPEECH_PHONES", "normalize_text",
           "g2p", "phonemize", "Voice", "VOICES", "Utterance", "SpeechTextCorpus",
           "embedded_sentences", "render_sentence", "plan_speech_text", "synthesize_speech_text",
           "load_speech_folder"]
