r"""Training and evaluation of text-to-speech with the generic trainer (family ``tts``).

* **training items**: every training utterance of the corpus: its phone ids (the script the
  synthesiser rendered, edge silences included), the frames per phone
  (:func:`~genmodels.speech.tts.frame_durations`), its speaker's index among the training
  voices and its normalised log-magnitude frames;
* **loss**: L1 between predicted and real normalised frames (teacher-forced durations, real
  frames only) + ``model.duration_weight`` × the squared error of the predicted
  ``log(1 + frames)`` per phone;
* **held-out utterances**: the corpus's val (test) *sentences*, never seen in training, each
  said by ``model.eval_voices`` *training* voices (round robin), rendered here by
  :func:`~genmodels.speech.corpus.render_sentence` with the corpus's seed: the "real
  recordings" the TTS output is compared with (the corpus is synthetic, so any voice can say any
  sentence). The TTS synthesises them from the text alone (phones from the g2p step, predicted
  durations), for the voice's learned speaker embedding;
* **evaluation**: ``loss``, ``frame_l1``, ``duration_mse`` on every split; on test also
  ``mcd_tts`` (the TTS waveform against the real one, MFCCs aligned by DTW), ``mcd_ceiling``
  (the real recording's own STFT magnitude through the same Griffin-Lim: the vocoder's ceiling),
  ``mcd_tts_true_durations`` (the TTS with the real durations: its spectra alone), and, with
  ``model.asr_run``, the character error rate of that ASR on the real recordings, on the TTS
  output and on the ceiling (``cer_real``, ``cer_tts``, ``cer_ceiling``) and
  ``cer_ratio = cer_tts / cer_real``;
* **figures**: the alignment (phones × frames, real durations against predicted) and the
  spectrograms of one held-out utterance, and ``model.samples`` WAV files each of real,
  ceiling and TTS (tagged as synthetic in their RIFF INFO chunk).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from genmodels.audio.features import mfcc
from genmodels.audio.griffinlim import griffin_lim
from genmodels.errors import ConfigError
from genmodels.speech.alignment import dtw_mel_cepstral_distortion
from genmodels.speech.corpus import SpeechTextCorpus, render_sentence
from genmodels.speech.measures import character_error_rate
from genmodels.speech.tts import FastSpeechTTS, PhoneVocab, frame_durations, log_magnitude
from genmodels.train.task import Task, batch_indices

__all__ = ["TTSTask", "MCD_MELS"]

#: mel bands of the MFCCs that MCD compares (the ASR's analysis: 40 bands at 8 kHz)
MCD_MELS = 40


class TTSTask(Task):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        if not isinstance(data, SpeechTextCorpus) or not data.voices or \
                getattr(cfg.data, "source", "synthetic") != "synthetic":
            raise ConfigError(f"data: the tts task needs the synthetic speech corpus with its "
                              f"phone alignment (data=speech_text, data.source=synthetic), got "
                              f"data={cfg.data.name}")
        m = cfg.model
        self.sample_rate = data.sample_rate
        self.vocab = PhoneVocab()
        self.voices = {v.name: v for v in data.voices}
        self.speakers = list(data.speakers["train"])                    # embedding index order
        if m.eval_voices > len(self.speakers):
            raise ConfigError(f"model.eval_voices: at most the {len(self.speakers)} training "
                              f"voices, got {m.eval_voices}")
        if m.asr_run is not None and not (Path(m.asr_run) / "checkpoints" / "last.pt").is_file():
            raise ConfigError(f"model.asr_run: no ASR checkpoint at {m.asr_run}/checkpoints/"
                              f"last.pt (train one with genmodels-train experiment=asr_speech, "
                              f"or set model.asr_run=null)")
        self.utts = {"train": list(data.utterances("train"))}
        for split in ("val", "test"):
            self.utts[split] = self._held_out(split)
        self.items = {s: [self._item(u) for u in self.utts[s]] for s in self.utts}
        if not self.items["train"]:
            raise ConfigError("data: the corpus has no training utterance")
        frames = torch.cat([it["frames"] for it in self.items["train"]])   # (ΣT, F)
        mean, std = frames.mean(0), frames.std(0).clamp(min=1e-3)
        for its in self.items.values():
            for it in its:
                it["frames"] = (it["frames"] - mean) / std
        longest = max(it["frames"].shape[0] for its in self.items.values() for it in its)
        model = FastSpeechTTS(len(self.vocab), len(self.speakers), mean.shape[0], m.d_model,
                              m.num_heads, m.enc_layers, m.dec_layers, m.d_ff, m.dropout,
                              m.kernel_size, max_len=4 * longest)
        model.frame_mean.copy_(mean)
        model.frame_std.copy_(std)
        self.model = model.to(device)
        self.asr = None
        self.outputs: dict = {}

    # ------------------------------------------------------------------ data
    def _held_out(self, split: str) -> list:
        """The split's sentences, each said by ``model.eval_voices`` training voices."""
        m = self.cfg.model
        sentences = {}
        for u in self.data.utterances(split):
            sentences.setdefault(u.sentence, u.text)
        out = []
        for n, (j, text) in enumerate(sorted(sentences.items())):
            for r in range(m.eval_voices):
                if m.eval_utterances is not None and len(out) >= m.eval_utterances:
                    return out
                name = self.speakers[(n * m.eval_voices + r) % len(self.speakers)]
                out.append(render_sentence(text, self.voices[name], self.sample_rate,
                                           self.cfg.data.seed, j))
        return out

    def _item(self, u, speaker: int | None = None) -> dict:
        """The training item of utterance ``u``; ``speaker``: its speaker-embedding row
        (default: ``u.speaker``'s index among the training voices; voice cloning passes the
        row of a new voice)."""
        m = self.cfg.model
        audio = u.audio.float()
        frames = log_magnitude(audio, m.n_fft, m.hop_length)           # (T, F)
        dur = frame_durations(u.phones, audio.shape[0], m.hop_length)
        assert sum(dur) == frames.shape[0], (sum(dur), frames.shape)
        return {"phones": torch.tensor(self.vocab.encode([p for p, _, _ in u.phones])),
                "durations": torch.tensor(dur), "frames": frames,
                "speaker": self.speakers.index(u.speaker) if speaker is None else speaker,
                "text": u.text}

    def _batch(self, split: str, idx) -> dict:
        its = [self.items[split][i] for i in idx]
        pad = torch.nn.utils.rnn.pad_sequence
        return {"phones": pad([it["phones"] for it in its], batch_first=True).to(self.device),
                "durations": pad([it["durations"] for it in its], batch_first=True).to(self.device),
                "frames": pad([it["frames"] for it in its], batch_first=True).to(self.device),
                "speaker": torch.tensor([it["speaker"] for it in its], device=self.device)}

    # ------------------------------------------------------------------ training
    def _length_groups(self) -> list[list[int]]:
        """The training items sorted by length, cut into groups of ``trainer.batch_size``
        (the ``n % batch_size`` longest are left out)."""
        B = self.cfg.trainer.batch_size
        n = len(self.items["train"])
        if B > n:
            raise ConfigError(f"trainer.batch_size: {B} exceeds the {n} training items; use a "
                              f"batch of at most that many")
        order = sorted(range(n), key=lambda i: (self.items["train"][i]["frames"].shape[0], i))
        return [order[i:i + B] for i in range(0, n - n % B, B)]

    def draw(self, step):
        """Epochs of shuffled items; with ``model.length_buckets``, epochs of shuffled groups of
        similar length (:meth:`_length_groups`), so that a batch pads little."""
        if self.cfg.model.length_buckets:
            if not hasattr(self, "groups"):
                self.groups = self._length_groups()
            g = int(batch_indices(len(self.groups), 1, step, self.cfg.seed)[0])
            return {"idx": torch.tensor(self.groups[g])}
        return {"idx": batch_indices(len(self.items["train"]), self.cfg.trainer.batch_size, step,
                                     self.cfg.seed)}

    def _losses(self, split: str, idx) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = self._batch(split, idx)
        pred, frame_mask, log_dur = self.model(b["phones"], b["speaker"], b["durations"])
        n_real = frame_mask.sum() * pred.shape[-1]
        l1 = (pred - b["frames"]).abs().mul(frame_mask[..., None]).sum() / n_real
        phone_mask = b["phones"] != 0
        target = torch.log1p(b["durations"].float())
        dur = F.mse_loss(log_dur[phone_mask], target[phone_mask])
        return l1 + self.cfg.model.duration_weight * dur, l1, dur

    def training_step(self, step, batch, optimize):
        loss, l1, dur = self._losses("train", batch["idx"].tolist())
        optimize(loss)
        return {"loss": loss.item(), "frame_l1": l1.item(), "duration_mse": dur.item()}

    # ------------------------------------------------------------------ synthesis
    def vocode(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Griffin-Lim of magnitudes ``[F, T]`` → ``[hop · (T − 1)]`` samples."""
        m = self.cfg.model
        return griffin_lim(magnitude.double().cpu(), m.n_fft, m.hop_length, m.griffin_lim_iters,
                           momentum=m.griffin_lim_momentum).float()

    @torch.no_grad()
    def synthesize(self, split: str, idx: list[int], true_durations: bool = False) -> list[dict]:
        """TTS of items ``idx`` of ``split`` from their phones and speakers: per item the
        waveform, the magnitudes ``[F, T]`` and the durations used."""
        b = self._batch(split, idx)
        if true_durations:
            h, _ = self.model.encode(b["phones"], b["speaker"])
            frames, mask = self.model.decode(h, b["durations"])
            dur = b["durations"]
        else:
            frames, mask, dur = self.model.synthesize(b["phones"], b["speaker"])
        return [{"audio": audio, "magnitude": mag, "durations": dur[i][b["phones"][i] != 0].cpu()}
                for i, (audio, mag) in enumerate(self.waveforms(frames, mask))]

    def waveforms(self, frames: torch.Tensor, mask: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per item of the model's normalised ``frames [B, T, F]`` (its valid frames ``mask
        [B, T]``): the waveform through the vocoder and the magnitudes ``[F, T_i]`` it came from."""
        out = []
        for i in range(frames.shape[0]):
            mag = self.model.denormalise(frames[i, :int(mask[i].sum())]).T    # (F, T_i)
            out.append((self.vocode(mag), mag))
        return out

    def _mfcc(self, audio: torch.Tensor) -> torch.Tensor:
        m = self.cfg.model
        return mfcc(audio.double(), self.sample_rate, n_mfcc=m.mcd_mfcc, n_fft=m.n_fft,
                    hop_length=m.hop_length, n_mels=MCD_MELS)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split):
        n = len(self.items[split])
        if n == 0:
            return {}
        chunks = [list(range(i, min(n, i + 16))) for i in range(0, n, 16)]
        sums = torch.zeros(3)
        for c in chunks:
            sums += torch.tensor([v.item() for v in self._losses(split, c)]) * len(c)
        out = dict(zip(("loss", "frame_l1", "duration_mse"), (sums / n).tolist()))
        if split != "test":
            return out
        real = [u.audio.float() for u in self.utts[split]]
        tts = [o for c in chunks for o in self.synthesize(split, c)]
        tts_true = [o for c in chunks for o in self.synthesize(split, c, true_durations=True)]
        ceiling = [self.vocode(log_magnitude(a, self.cfg.model.n_fft,
                                             self.cfg.model.hop_length).exp().T) for a in real]
        ref = [self._mfcc(a) for a in real]

        def mcd(audios):
            return sum(float(dtw_mel_cepstral_distortion(self._mfcc(a), r))
                       for a, r in zip(audios, ref)) / n

        out["mcd_tts"] = mcd([o["audio"] for o in tts])
        out["mcd_tts_true_durations"] = mcd([o["audio"] for o in tts_true])
        out["mcd_ceiling"] = mcd(ceiling)
        true_frames = sum(int(it["durations"].sum()) for it in self.items[split])
        out["length_ratio"] = sum(int(o["durations"].sum()) for o in tts) / true_frames
        self.outputs = {"tts": tts[:self.cfg.model.samples + 1],
                        "ceiling": ceiling[:self.cfg.model.samples + 1]}
        if self.cfg.model.asr_run is not None:
            out.update(self._asr_scores(real, [o["audio"] for o in tts], ceiling, split))
        return out

    def _asr_scores(self, real, tts, ceiling, split) -> dict:
        from genmodels.speech.transcribe import load_asr_run, transcribe_audio
        m = self.cfg.model
        if self.asr is None:
            self.asr = load_asr_run(m.asr_run, self.data, self.device)
        refs = [u.text for u in self.utts[split]]
        out, hyps = {}, {}
        for name, audios in (("real", real), ("tts", tts), ("ceiling", ceiling)):
            hyps[name] = transcribe_audio(self.asr, audios, self.sample_rate, m.asr_mode)
            out[f"cer_{name}"] = character_error_rate(hyps[name], refs)
        if out["cer_real"] > 0:
            out["cer_ratio"] = out["cer_tts"] / out["cer_real"]
        self.outputs["hyps"] = hyps
        return out

    # ------------------------------------------------------------------ figures
    def figures(self, out_dir: Path):
        from genmodels.audio.plots import plot_audio_panels
        from genmodels.audio.wavfile import SYNTHETIC_COMMENT, write_tagged_wav
        from genmodels.speech.plots import plot_duration_alignment

        m = self.cfg.model
        utts = self.utts["test"]
        if not utts:
            return []
        k = min(len(utts), max(1, m.samples))
        tts = self.outputs.get("tts") or self.synthesize("test", list(range(k)))
        ceiling = self.outputs.get("ceiling") or [
            self.vocode(log_magnitude(u.audio.float(), m.n_fft, m.hop_length).exp().T)
            for u in utts[:k]]
        u, it = utts[0], self.items["test"][0]
        phones = [p for p, _, _ in u.phones]
        paths = [plot_duration_alignment(
            phones, it["durations"], tts[0]["durations"], m.hop_length / self.sample_rate,
            out_dir / "tts_alignment.png",
            title=f"held-out sentence {u.text!r}, voice {u.speaker}: phones × frames")]
        paths.append(plot_audio_panels(
            {"real recording": u.audio.float(), "Griffin-Lim of its |STFT| (ceiling)": ceiling[0],
             "TTS (predicted durations)": tts[0]["audio"]}, self.sample_rate,
            out_dir / "tts_spectrograms.png", title=f"{u.text!r}, voice {u.speaker}",
            n_fft=m.n_fft, hop_length=m.hop_length))
        for i in range(min(k, m.samples)):
            u = utts[i]
            for name, audio, what in (
                    ("real", u.audio.float(), "the synthetic corpus's source-filter voice"),
                    ("ceiling", ceiling[i], "Griffin-Lim of the corpus recording's STFT magnitude"),
                    ("tts", tts[i]["audio"], "text-to-speech (tts_speech), Griffin-Lim")):
                paths.append(write_tagged_wav(
                    out_dir / f"sample{i}_{u.speaker}_{name}.wav", audio, self.sample_rate,
                    comment=f"{SYNTHETIC_COMMENT}: {what}, voice {u.speaker}",
                    title=u.text))
        return paths
