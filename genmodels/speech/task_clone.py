r"""Voice cloning with the generic trainer (family ``clone``, ``experiment=clone_speech``).

What the trainer trains is the **judge**; the cloning runs in the test evaluation:

* **setup**: the trained TTS of ``model.tts_run`` is rebuilt on this run's corpus (which must be
  the one it was trained on) and frozen; its speaker table becomes a
  :class:`~genmodels.speech.clone.ClonedSpeaker` (the trained rows a buffer, one new row);
* **the speaker classifier** (the trainer's model, one optimiser group per variant): an MLP on
  :func:`~genmodels.speech.clone.speaker_features` of *real* recordings of every voice of the
  corpus (training, validation and test voices: the held-out voice included), saying the
  corpus's ``model.clf_sentences`` validation sentences — never a test sentence
  (``model.variants``): ``plain`` sees all the features of the recordings as they are; ``gl``
  sees each recording also after the TTS's own STFT-magnitude → Griffin-Lim round trip, so that
  the vocoder's artefacts are no surprise to it; ``pitch`` sees the pitch and voicing features
  alone (:data:`~genmodels.speech.clone.PITCH_FEATURES`), which the TTS's smeared spectral
  envelope cannot mislead.
  Validation: accuracy on ``model.clf_val_sentences`` training sentences said by every voice;
* **test evaluation**:

  1. *real*: the classifier on the real recordings of the test sentences by every voice (it must
     recognise voices well, else what it says of the clones means little);
  2. *control*: on the TTS output of *training* voices saying the test sentences
     (``model.control_voices`` per sentence): can it recognise a voice the TTS knows at all?
  3. *clones*: for each voice of ``model.voices`` (default: the corpus's test voices) and seed
     s < ``model.seeds``, the training sentences are put in a seeded order and rendered by that
     voice (``render_sentence``, the corpus's seed) until the audio reaches the largest budget;
     for each budget the shortest prefix reaching it (:func:`~genmodels.speech.clone.take_until`)
     is the adaptation set, the new row is fitted on it
     (:func:`~genmodels.speech.clone.fit_speaker_embedding`; init: the mean training row + seeded
     noise; with ``model.method=lora`` also rank-r LoRA adapters on the decoder's attention and
     FFN weights, reset to zero before each clone) and the TTS says the test sentences with it
     (predicted durations, Griffin-Lim). The
     measure is the fraction the classifier assigns to the cloned voice
     (``clone_acc_<budget>s_<variant>``: mean over voices and seeds);
  4. *baselines*: the mean training row (no adaptation) and the row of the training voice
     nearest in f0 (``baseline_mean_acc_*``, ``baseline_nearest_acc_*``);
  5. with ``model.asr_run``: that ASR's CER on the clones of ``model.asr_budget`` (seed 0) and
     on the real recordings of the same sentences.

  Every row (voice, seed, budget: seconds, utterances, loss before/after, accuracy, the voice
  the classifier picked most, CPU seconds) goes to ``figures/clone_results.json``; the figure
  ``clone_curve.png`` draws the accuracy against the adaptation seconds, per voice, seeds as
  error bars; WAV pairs (clone, real) of the first test sentence.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.errors import ConfigError
from genmodels.speech.clone import (
    PITCH_FEATURES,
    ClonedSpeaker,
    SpeakerClassifier,
    feature_names,
    fit_speaker_embedding,
    speaker_features,
    take_until,
)
from genmodels.speech.corpus import SPLITS, SpeechTextCorpus, render_sentence
from genmodels.speech.measures import character_error_rate
from genmodels.speech.tts import log_magnitude
from genmodels.train.task import Task, batch_indices

__all__ = ["CloneTask"]

#: the decoder weights that ``model.method=lora`` adapts (attention and FFN of every block)
LORA_TARGETS = ("w_q", "w_k", "w_v", "w_o", "w1", "w2")

#: data-config fields that may differ between this run and the TTS run (they do not change the corpus)
_CORPUS_NEUTRAL = ("cache_dir",)


def _tts_run_problem(run: str | None) -> str | None:
    how = ("train one with `genmodels-train experiment=tts_speech data.cache_dir=outputs/speech_cache "
           "hydra.run.dir=outputs/tts_speech/run`, then pass model.tts_run=outputs/tts_speech/run")
    if run is None:
        return f"model.tts_run: required, the folder of a trained tts_speech run ({how})"
    if not (Path(run) / "checkpoints" / "last.pt").is_file() and not Path(run).is_file():
        return f"model.tts_run: no TTS checkpoint at {run}/checkpoints/last.pt ({how})"
    return None


class CloneTask(Task):
    progress_metric = "loss_plain"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        c0 = time.process_time()
        m = cfg.model
        if not isinstance(data, SpeechTextCorpus) or not data.voices or \
                getattr(cfg.data, "source", "synthetic") != "synthetic":
            raise ConfigError(f"data: voice cloning needs the synthetic speech corpus with its "
                              f"phone alignment (data=speech_text, data.source=synthetic), got "
                              f"data={cfg.data.name}")
        bad = _tts_run_problem(m.tts_run)
        if bad:
            raise ConfigError(bad)
        if m.asr_run is not None and not (Path(m.asr_run) / "checkpoints" / "last.pt").is_file():
            raise ConfigError(f"model.asr_run: no ASR checkpoint at {m.asr_run}/checkpoints/"
                              f"last.pt (train one with genmodels-train experiment=asr_speech, "
                              f"or set model.asr_run=null)")
        self._check_same_corpus()
        from genmodels.speech.cli import load_run
        try:
            self.tts = load_run(m.tts_run, "tts", str(device), data=data)
        except ValueError as e:
            raise ConfigError(f"model.tts_run: {e}") from None
        tts = self.tts
        for p in tts.model.parameters():
            p.requires_grad_(False)
        table = tts.model.speaker.weight.detach()
        self.mean_embedding = table.mean(0)                                # the init of a clone
        tts.model.speaker = ClonedSpeaker(table, self.mean_embedding)
        self.clone_row = tts.model.speaker.index
        self.lora: list = []                  # method=lora: the decoder's adapters (A, B)
        self._lora_init: list = []
        if m.method == "lora":
            from genmodels.transfer.lora import apply_lora, lora_parameters
            apply_lora(tts.model.decoder, m.lora_rank, float(m.lora_rank), LORA_TARGETS)
            self.lora = lora_parameters(tts.model.decoder)
            self._lora_init = [p.detach().clone() for p in self.lora]   # B = 0: the TTS as trained
            tts.model.speaker.new.requires_grad_(True)
        self.sample_rate = data.sample_rate
        self.voices = {v.name: v for v in data.voices}
        self.classes = sorted(self.voices)                                 # classifier outputs
        self.clone_voices = list(m.voices) if m.voices is not None else list(data.speakers["test"])
        for v in self.clone_voices:
            if v not in self.voices:
                raise ConfigError(f"model.voices: {v!r} is not a voice of the corpus "
                                  f"({', '.join(self.classes)})")
            if v in tts.speakers:
                raise ConfigError(f"model.voices: {v!r} is a training voice of the TTS; clone a "
                                  f"held-out one ({', '.join(data.speakers['test'])})")
        self.sentences = {s: sorted({u.sentence: u.text for u in data.utterances(s)}.items())
                          for s in SPLITS}
        self._recordings = {(u.sentence, u.speaker): u for s in SPLITS for u in data.utterances(s)}
        n_val, n_train = len(self.sentences["val"]), len(self.sentences["train"])
        if m.clf_sentences > n_val:
            raise ConfigError(f"model.clf_sentences: the corpus has {n_val} validation sentences, "
                              f"got {m.clf_sentences}")
        if m.clf_val_sentences >= n_train:
            raise ConfigError(f"model.clf_val_sentences: must be fewer than the corpus's "
                              f"{n_train} training sentences, got {m.clf_val_sentences}")
        n_test = len(self.sentences["test"])
        if m.eval_sentences is not None and m.eval_sentences > n_test:
            raise ConfigError(f"model.eval_sentences: the corpus has {n_test} test sentences, "
                              f"got {m.eval_sentences}")
        if m.control_voices > len(tts.speakers):
            raise ConfigError(f"model.control_voices: at most the TTS's {len(tts.speakers)} "
                              f"training voices, got {m.control_voices}")
        # --- the classifier's data: real recordings of every voice
        sets = {"train": self.sentences["val"][:m.clf_sentences],
                "val": self.sentences["train"][-m.clf_val_sentences:]}
        self.variants = list(m.variants)
        self.clf_x, self.clf_y = {}, {}
        for split, sents in sets.items():
            audios, labels = [], []
            for v in self.classes:
                for j, text in sents:
                    audios.append(self.recording(j, text, v).audio.float())
                    labels.append(self.classes.index(v))
            y = torch.tensor(labels)
            x = self.features(audios)
            for name in self.variants:
                self.clf_x[(name, split)], self.clf_y[(name, split)] = x, y
            if "gl" in self.variants and split == "train":     # + the Griffin-Lim round trips
                x_gl = self.features([self.round_trip(a) for a in audios])
                self.clf_x[("gl", split)] = torch.cat([x, x_gl])
                self.clf_y[("gl", split)] = torch.cat([y, y])
        self.model = nn.ModuleDict()
        names = feature_names()
        for name in self.variants:
            columns = [names.index(f) for f in PITCH_FEATURES] if name == "pitch" else None
            clf = SpeakerClassifier(len(names), len(self.classes), m.clf_hidden, m.clf_dropout,
                                    columns)
            clf.fit_scaler(self.clf_x[(name, "train")])
            self.model[name] = clf
        self.model.to(device)
        for key in self.clf_x:
            self.clf_x[key] = self.clf_x[key].to(device)
            self.clf_y[key] = self.clf_y[key].to(device)
        self.outputs: dict = {}
        self.setup_cpu_s = time.process_time() - c0

    # ------------------------------------------------------------------ data
    def _check_same_corpus(self) -> None:
        """The TTS run must have been trained on this run's corpus (same split, voices, seed)."""
        from genmodels.train.checkpoint import load_checkpoint, resolve_checkpoint
        try:
            saved = load_checkpoint(resolve_checkpoint(self.cfg.model.tts_run)).get("config", {})
        except (FileNotFoundError, ValueError) as e:
            raise ConfigError(f"model.tts_run: {e}") from None
        if saved.get("model", {}).get("family") != "tts":
            raise ConfigError(f"model.tts_run: {self.cfg.model.tts_run} is a "
                              f"{saved.get('model', {}).get('family')!r} run, not a tts_speech run")
        theirs = saved.get("data", {})
        mine = dataclasses.asdict(self.cfg.data)
        for key in sorted(set(mine) | set(theirs)):
            if key not in _CORPUS_NEUTRAL and mine.get(key) != theirs.get(key):
                raise ConfigError(f"data.{key}: {mine.get(key)!r}, but the TTS run "
                                  f"{self.cfg.model.tts_run} was trained on data.{key}="
                                  f"{theirs.get(key)!r}; clone on the TTS's own corpus")

    def recording(self, sentence: int, text: str, voice: str):
        """The real recording of ``text`` (corpus sentence ``sentence``) by ``voice``: the
        corpus's own when it has it, else rendered exactly as the corpus renders."""
        u = self._recordings.get((sentence, voice))
        if u is None:
            u = render_sentence(text, self.voices[voice], self.sample_rate, self.cfg.data.seed,
                                sentence)
        return u

    def round_trip(self, audio: torch.Tensor) -> torch.Tensor:
        """``audio`` through the TTS's STFT magnitude and Griffin-Lim (its vocoder's ceiling)."""
        m = self.tts.cfg.model
        return self.tts.vocode(log_magnitude(audio, m.n_fft, m.hop_length).exp().T)

    def features(self, audios: list) -> torch.Tensor:
        return torch.stack([speaker_features(a, self.sample_rate) for a in audios])

    def adaptation_utterances(self, voice: str, seed: int, seconds: float) -> list:
        """``voice`` saying the training sentences in a seeded order (a function of the run's
        seed, ``seed`` and the voice), rendered until ``seconds`` of audio are reached."""
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + seed * 1009
                                          + self.classes.index(voice))
        order = torch.randperm(len(self.sentences["train"]), generator=g).tolist()
        out, total = [], 0.0
        for i in order:
            j, text = self.sentences["train"][i]
            out.append(self.recording(j, text, voice))
            total += out[-1].seconds
            if total >= seconds:
                return out
        raise ConfigError(f"model.budgets: {seconds} s exceeds the {total:.0f} s of all the "
                          f"training sentences said by {voice}")

    # ------------------------------------------------------------------ training: the classifier
    def param_groups(self):
        return {name: list(self.model[name].parameters()) for name in self.variants}

    def draw(self, step):
        B = self.cfg.trainer.batch_size
        return {f"idx_{name}": batch_indices(self.clf_x[(name, "train")].shape[0], B, step,
                                             self.cfg.seed + k)
                for k, name in enumerate(self.variants)}

    def training_step(self, step, batch, optimize):
        logs = {}
        for name in self.variants:
            idx = batch[f"idx_{name}"].to(self.device)
            logits = self.model[name](self.clf_x[(name, "train")][idx])
            y = self.clf_y[(name, "train")][idx]
            loss = F.cross_entropy(logits, y)
            optimize(loss, name)
            logs[f"loss_{name}"] = loss.item()
            logs[f"acc_{name}"] = (logits.argmax(-1) == y).float().mean().item()
        return logs

    # ------------------------------------------------------------------ synthesis
    @torch.no_grad()
    def speak(self, texts: list[str], rows: list[int] | None = None,
              embedding: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The TTS saying ``texts`` (predicted durations, Griffin-Lim), each with the speaker
        row ``rows[i]``, or all with the vector ``embedding`` (put in the clone's row)."""
        tts, model = self.tts, self.tts.model
        if embedding is not None:
            model.speaker.new.copy_(embedding)
            rows = [self.clone_row] * len(texts)
        out = []
        for i in range(0, len(texts), 16):
            ids = [torch.tensor(tts.vocab.text_to_ids(t)) for t in texts[i:i + 16]]
            phones = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True).to(self.device)
            speaker = torch.tensor(rows[i:i + 16], device=self.device)
            frames, mask, _ = model.synthesize(phones, speaker)
            out += [audio for audio, _ in tts.waveforms(frames, mask)]
        return out

    @torch.no_grad()
    def classify(self, audios: list[torch.Tensor]) -> dict[str, list[str]]:
        """The voice each classifier variant hears in each audio."""
        x = self.features(audios).to(self.device)
        return {name: [self.classes[i] for i in self.model[name](x).argmax(-1).tolist()]
                for name in self.variants}

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split):
        out = {}
        if split == "val":
            for name in self.variants:
                x, y = self.clf_x[(name, "val")], self.clf_y[(name, "val")]
                logits = self.model[name](x)
                out[f"loss_{name}"] = F.cross_entropy(logits, y).item()
                out[f"acc_{name}"] = (logits.argmax(-1) == y).float().mean().item()
            return out
        if split != "test":
            return out
        return self._test()

    def _test(self) -> dict:
        m = self.cfg.model
        tts = self.tts
        detail: dict = {"setup_cpu_s": self.setup_cpu_s}
        out: dict = {"setup_cpu_s": self.setup_cpu_s}
        sents = self.sentences["test"][:m.eval_sentences]
        texts = [t for _, t in sents]
        # 1. real recordings of every voice
        c0 = time.process_time()
        real_audio = {v: [self.recording(j, t, v).audio.float() for j, t in sents]
                      for v in self.classes}
        flat = [a for v in self.classes for a in real_audio[v]]
        labels = [v for v in self.classes for _ in sents]
        preds = self.classify(flat)
        detail["real"] = {}
        for name in self.variants:
            out[f"real_acc_{name}"] = _accuracy(preds[name], labels)
            detail["real"][name] = {v: _accuracy(preds[name][i * len(sents):(i + 1) * len(sents)],
                                                 [v] * len(sents))
                                    for i, v in enumerate(self.classes)}
        out["real_cpu_s"] = time.process_time() - c0
        # 2. control: training voices through the TTS
        c0 = time.process_time()
        S, cv = len(tts.speakers), m.control_voices
        pairs = [(t, tts.speakers[(n * cv + r) % S]) for n, t in enumerate(texts) for r in range(cv)]
        audio = self.speak([t for t, _ in pairs], rows=[tts.speakers.index(v) for _, v in pairs])
        preds = self.classify(audio)
        detail["control"] = {}
        for name in self.variants:
            out[f"control_acc_{name}"] = _accuracy(preds[name], [v for _, v in pairs])
            detail["control"][name] = {v: _accuracy([p for p, (_, w) in zip(preds[name], pairs) if w == v],
                                                    [v] * sum(w == v for _, w in pairs))
                                       for v in tts.speakers if any(w == v for _, w in pairs)}
        out["control_cpu_s"] = time.process_time() - c0
        # 3. baselines: the mean training row, the row of the training voice nearest in f0
        c0 = time.process_time()
        detail["baselines"] = []
        mean_preds = self.classify(self.speak(texts, embedding=self.mean_embedding))
        for v in self.clone_voices:
            near = min(tts.speakers, key=lambda w: abs(math.log(self.voices[w].f0 /
                                                                 self.voices[v].f0)))
            near_preds = self.classify(self.speak(texts, rows=[tts.speakers.index(near)] * len(texts)))
            row = {"voice": v, "nearest": near}
            for name in self.variants:
                row[f"mean_acc_{name}"] = _accuracy(mean_preds[name], [v] * len(texts))
                row[f"nearest_acc_{name}"] = _accuracy(near_preds[name], [v] * len(texts))
                row[f"mean_heard_as_{name}"] = _top(mean_preds[name])
                row[f"nearest_heard_as_{name}"] = _top(near_preds[name])
            detail["baselines"].append(row)
        for name in self.variants:
            for b in ("mean", "nearest"):
                out[f"baseline_{b}_acc_{name}"] = statistics.fmean(
                    r[f"{b}_acc_{name}"] for r in detail["baselines"])
        out["baseline_cpu_s"] = time.process_time() - c0
        # 4. clones
        c0 = time.process_time()
        rows, keep = [], {}
        for v in self.clone_voices:
            for seed in range(m.seeds):
                utts = self.adaptation_utterances(v, seed, max(m.budgets))
                items = []
                for u in utts:
                    it = tts._item(u, speaker=self.clone_row)
                    it["frames"] = (it["frames"] - tts.model.frame_mean) / tts.model.frame_std
                    items.append(it)
                seconds = [u.seconds for u in utts]
                g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + seed * 1009
                                                  + self.classes.index(v) + 7)
                noise = torch.randn(self.mean_embedding.shape, generator=g)
                init = self.mean_embedding + m.init_noise * noise.to(self.mean_embedding)
                for budget in m.budgets:
                    c1 = time.process_time()
                    n = take_until(seconds, budget)
                    with torch.no_grad():                   # every clone starts from the TTS
                        for p, p0 in zip(self.lora, self._lora_init):
                            p.copy_(p0)
                    vec, losses = fit_speaker_embedding(tts, items[:n], init, m.adapt_steps,
                                                        m.adapt_lr, m.adapt_batch, seed,
                                                        self.lora, m.lora_lr)
                    fit_s = time.process_time() - c1
                    audio = self.speak(texts, embedding=vec)
                    preds = self.classify(audio)
                    row = {"voice": v, "seed": seed, "budget_s": budget, "method": m.method,
                           "seconds": sum(seconds[:n]), "utterances": n,
                           "loss_first": losses[0], "loss_last": losses[-1],
                           "fit_cpu_s": fit_s, "cpu_s": time.process_time() - c1,
                           "distance_to_mean": float((vec - self.mean_embedding).norm())}
                    for name in self.variants:
                        row[f"acc_{name}"] = _accuracy(preds[name], [v] * len(texts))
                        row[f"heard_as_{name}"] = _top(preds[name])
                    rows.append(row)
                    if seed == 0 and budget == m.asr_budget:
                        keep[v] = audio
        detail["clones"] = rows
        out["clone_cpu_s"] = time.process_time() - c0
        for budget in m.budgets:
            sel = [r for r in rows if r["budget_s"] == budget]
            for name in self.variants:
                accs = [r[f"acc_{name}"] for r in sel]
                out[f"clone_acc_{budget:g}s_{name}"] = statistics.fmean(accs)
                for v in self.clone_voices:
                    va = [r[f"acc_{name}"] for r in sel if r["voice"] == v]
                    out[f"clone_acc_{v}_{budget:g}s_{name}"] = statistics.fmean(va)
        # 5. the ASR reads the clones
        if m.asr_run is not None and keep:
            c0 = time.process_time()
            from genmodels.speech.transcribe import load_asr_run, transcribe_audio
            asr = load_asr_run(m.asr_run, self.data, self.device)
            refs = [t for v in keep for t in texts]
            clone = transcribe_audio(asr, [a for v in keep for a in keep[v]], self.sample_rate,
                                     m.asr_mode)
            real = transcribe_audio(asr, [a for v in keep for a in real_audio[v]],
                                    self.sample_rate, m.asr_mode)
            out["cer_clone"] = character_error_rate(clone, refs)
            out["cer_real"] = character_error_rate(real, refs)
            detail["asr"] = {"budget_s": m.asr_budget, "seed": 0, "voices": list(keep),
                             "cer_clone": out["cer_clone"], "cer_real": out["cer_real"],
                             "examples": [{"ref": r, "clone": c, "real": h} for r, c, h in
                                          list(zip(refs, clone, real))[:5]]}
            out["asr_cpu_s"] = time.process_time() - c0
        self.outputs = {"detail": detail, "keep": keep, "real_audio": real_audio,
                        "texts": texts, "metrics": dict(out)}
        return out

    # ------------------------------------------------------------------ figures
    def figures(self, out_dir: Path):
        from genmodels.audio.wavfile import SYNTHETIC_COMMENT, write_tagged_wav
        from genmodels.speech.plots import plot_clone_curve

        if not self.outputs:
            return []
        m = self.cfg.model
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        detail = self.outputs["detail"]
        path = out_dir / "clone_results.json"
        path.write_text(json.dumps({"metrics": self.outputs["metrics"], **detail}, indent=1) + "\n")
        paths = [path]
        paths.append(plot_clone_curve(detail["clones"], detail["baselines"], self.variants,
                                      out_dir / "clone_curve.png",
                                      control={n: self.outputs["metrics"][f"control_acc_{n}"]
                                               for n in self.variants}))
        keep, texts = self.outputs["keep"], self.outputs["texts"]
        for v in list(keep)[:m.samples]:
            for name, audio, what in (
                    ("clone", keep[v][0], (f"voice clone of {v} from {m.asr_budget:g} s of its "
                                           f"speech (clone_speech, seed 0), Griffin-Lim")),
                    ("real", self.outputs["real_audio"][v][0],
                     f"the synthetic corpus's source-filter voice {v}")):
                paths.append(write_tagged_wav(out_dir / f"{v}_{name}.wav", audio, self.sample_rate,
                                              comment=f"{SYNTHETIC_COMMENT}: {what}",
                                              title=texts[0]))
        return paths


def _accuracy(pred: list[str], truth: list[str]) -> float:
    return sum(p == t for p, t in zip(pred, truth)) / max(1, len(truth))


def _top(pred: list[str]) -> str:
    """The voice heard most often (ties: the first in sorted order)."""
    counts = Counter(pred)
    return min(counts, key=lambda v: (-counts[v], v))
