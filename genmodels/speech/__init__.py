"""Speech: the transcription measures (edit distance, character error rate) of the chapter's
workflow; recognition, text-to-speech and voice cloning follow."""

from genmodels.speech.measures import character_error_rate, edit_distance

__all__ = ["edit_distance", "character_error_rate"]
