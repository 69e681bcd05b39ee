"""The character language-model stack, shared by every family that reads text.

* :mod:`genmodels.charlm.config` — the schemas of the GPT, the LSTM LM, MLM pre-training and
  fine-tuning (their corpora are data schemas: ``genmodels.data.text``).
* :mod:`genmodels.charlm.task` — :class:`CharLMTask` (next-character training of any model in
  :data:`LANGUAGE_MODELS`), :class:`MLMTask` (eq. 2.28), :class:`FinetuneTask` (eq. 2.29).
* :mod:`genmodels.charlm.sample` — ``genmodels-sample``: text from a trained language model.

It sits above the building blocks it trains (``genmodels.transformer``, ``genmodels.rnn``) and
below RLHF (``genmodels.rl``), which pretrains its policy with :class:`CharLMTask`.
"""

from genmodels.charlm.task import (LANGUAGE_MODELS, CharLMTask, FinetuneTask, MLMTask,
                                   build_encoder, build_gpt, build_lstm_lm)

__all__ = ["LANGUAGE_MODELS", "CharLMTask", "MLMTask", "FinetuneTask", "build_gpt",
           "build_lstm_lm", "build_encoder"]
