"""RLHF in miniature (InstructGPT's recipe) as two trainer Tasks.

``RewardModelTask`` (family ``rlhf_reward``, experiment ``rlhf_reward_model``):
  1. the policy: a char-level GPT pretrained on the run's corpus (``data``, tiny Shakespeare in
     the experiments) by the trainer itself, as the run ``<workdir>/policy`` (stage 1; reused
     when it exists, or any ``gpt`` run given as ``model.policy``);
  2. the preference data: for each corpus prompt, K completions sampled from the policy, ranked
     by the scripted human (:class:`~genmodels.rl.preferences.ScriptedHuman`); every pair with a
     clear preference is saved to ``<workdir>/preferences.jsonl`` (prompt, chosen, rejected) —
     swap in real labels in the same format; held-out splits are by prompt;
  3. the reward model R_θ trained with :func:`~genmodels.rl.rlhf.preference_loss` (eq. 2.2);
     evaluation reports the held-out pairwise accuracy.

``RLHFPPOTask`` (family ``rlhf_ppo``, experiment ``rlhf_ppo``):
  4. PPO (eq. 2.4) on the policy: each step samples completions, scores them with the frozen
     R_θ, shapes per-token rewards with the KL penalty to the frozen reference policy
     (:func:`~genmodels.rl.rlhf.kl_shaped_rewards`, eq. 2.3), estimates advantages with
     :func:`~genmodels.rl.returns.gae` (a value head on the policy's hidden states) and takes
     clipped-objective steps. Logged: R_θ score, KL(π‖π_ref) per completion, and the scripted
     human's own score (which R_θ only approximates); samples before/after in the figures folder.
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from genmodels.charlm.config import GPTConfig
from genmodels.charlm.task import build_gpt
from genmodels.data.text import CharCorpus, windows
from genmodels.errors import ConfigError

from genmodels.rl.ppo import approx_kl, clip_fraction, ppo_clip_objective, value_loss
from genmodels.rl.preferences import (ScriptedHuman, corpus_words, make_preference_pairs,
                                      read_preferences, sample_completions, write_preferences)
from genmodels.rl.returns import gae
from genmodels.rl.reward_model import RewardModel, pad_right
from genmodels.rl.rlhf import AdaptiveKLController, kl_shaped_rewards, preference_loss
from genmodels.train.checkpoint import atomic_write_bytes, load_checkpoint, resolve_checkpoint
from genmodels.train.config import (Config, OptimConfig, SchedulerConfig, TrainerConfig,
                                    validate)
from genmodels.train.task import Task, batch_indices
from genmodels.train.trainer import Trainer

__all__ = ["RewardModelTask", "RLHFPPOTask", "prepare_policy", "load_reward_model",
           "split_by_group"]


def _log(msg: str) -> None:
    import sys
    print(f"[rlhf] {msg}", file=sys.stderr, flush=True)


#: the policy's architecture keys, which the reward model (when initialised from the policy)
#: and the value head must share with it
_POLICY_ARCH = ("block_size", "n_layer", "n_head", "n_embd")


def assets_seed(cfg) -> int:
    """The seed of the cached assets (policy run, preference pairs): ``model.assets_seed``, or
    the run's seed when it is unset."""
    return cfg.seed if cfg.model.assets_seed is None else cfg.model.assets_seed


def policy_config(cfg) -> Config:
    """Stage 1 as an ordinary character-LM run: a GPT of the ``model.lm_*`` sizes trained by the
    trainer on the run's corpus (``data``), AdamW with a cosine learning rate."""
    m, t = cfg.model, cfg.trainer
    gpt = GPTConfig(block_size=m.block_size, n_layer=m.lm_layers, n_head=m.lm_heads,
                    n_embd=m.lm_embd)
    trainer = TrainerConfig(max_steps=max(m.lm_steps, 1), batch_size=m.lm_batch, eval_every=0,
                            ckpt_every=500, device=t.device, threads=t.threads,
                            progress=t.progress, figures=t.figures, resume=not m.regenerate,
                            optim=OptimConfig(name="adamw", lr=m.lm_lr, weight_decay=0.01),
                            scheduler=SchedulerConfig(name="cosine", min_lr_ratio=0.05))
    return validate(Config(run_name="rlhf_policy", seed=assets_seed(cfg), data=cfg.data, model=gpt,
                           trainer=trainer))


@contextlib.contextmanager
def _rng_kept():
    """The caller's Python, NumPy and torch random states, untouched by what runs inside."""
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        yield
    random.setstate(py)
    np.random.set_state(npy)


def prepare_policy(cfg, corpus, device) -> tuple[GPT, Path]:
    """The pretrained char-LM policy and its checkpoint: ``model.policy`` (any ``gpt`` run), or
    the run ``<workdir>/policy``, trained there by the trainer when it is missing or shorter than
    ``model.lm_steps`` (a cached run: a second experiment reuses it)."""
    m = cfg.model
    if not isinstance(corpus, CharCorpus):
        raise ConfigError("data: RLHF needs a text corpus (data=shakespeare, embedded_text or "
                          "text_file)")
    if m.policy:
        try:
            path = resolve_checkpoint(m.policy)
        except FileNotFoundError as e:
            raise ConfigError(f"model.policy: {e}") from None
        ck = load_checkpoint(path)                         # weights_only: runs no code
    else:
        run_dir = Path(m.workdir) / "policy"
        path = run_dir / "checkpoints" / "last.pt"
        ck = load_checkpoint(path) if path.exists() else None
        if m.regenerate or ck is None or ck["step"] < m.lm_steps:
            if m.lm_steps == 0:
                raise ConfigError(f"model.lm_steps: is 0 but there is no policy run at {run_dir}")
            _log(f"pretraining the char-LM policy ({m.lm_steps} steps) in {run_dir}")
            with _rng_kept():
                Trainer(policy_config(cfg), run_dir).fit()
            ck = load_checkpoint(path)
    saved = ck["config"]["model"]
    want = dict(zip(_POLICY_ARCH, (m.block_size, m.lm_layers, m.lm_heads, m.lm_embd)))
    if saved.get("family") != "gpt" or any(saved[k] != v for k, v in want.items()):
        raise ConfigError(f"model.policy: {path} holds a {saved.get('family')!r} model with "
                          f"{ {k: saved.get(k) for k in want} }, the config asks for a gpt with "
                          f"{want}; use model.regenerate=true or another model.workdir")
    if list(ck["task"].get("chars", [])) != list(corpus.chars):
        raise ConfigError(f"model.policy: {path} was trained on another vocabulary than data "
                          f"{corpus.name!r}")
    gpt = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(GPTConfig), saved))
    policy = build_gpt(gpt, corpus.vocab_size)
    policy.load_state_dict(ck["model"])
    return policy.to(device).eval(), path


def _build_reward_model(m, vocab_size: int) -> RewardModel:
    if m.rm_init_from_policy:
        return RewardModel(vocab_size, m.block_size, m.lm_layers, m.lm_heads, m.lm_embd,
                           m.rm_pooling)
    return RewardModel(vocab_size, m.block_size, m.rm_layers, m.rm_heads, m.rm_embd,
                       m.rm_pooling)


def load_reward_model(path: str | Path, vocab_size: int, device) -> RewardModel:
    """R_θ from a checkpoint of an ``rlhf_reward`` run (``<run>/checkpoints/last.pt``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model.reward_ckpt: {path} does not exist; train the reward "
                                f"model first (genmodels-train experiment=rlhf_reward_model)")
    ck = load_checkpoint(path)
    from types import SimpleNamespace
    rm_cfg = {"rm_pooling": "last", **ck["config"]["model"]}  # runs before rm_pooling existed
    rm = _build_reward_model(SimpleNamespace(**rm_cfg), vocab_size)
    rm.load_state_dict(ck["model"])
    return rm.to(device).eval().requires_grad_(False)


def split_by_group(records: list[dict], seed: int = 0) -> dict[str, torch.Tensor]:
    """80/10/10 train/val/test indices of the comparisons, whole prompts at a time (all pairs of
    one prompt share its ``group``; records without one — e.g. real labels — are their own group),
    so no held-out completion was seen in training. Fixed by ``seed``, not by the run's seed."""
    groups: dict = {}
    for i, r in enumerate(records):
        groups.setdefault(r.get("group", f"#{i}"), []).append(i)
    keys = list(groups)
    perm = torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed)).tolist()
    n_hold = max(1, len(keys) // 10)
    parts = {"test": perm[:n_hold], "val": perm[n_hold:2 * n_hold], "train": perm[2 * n_hold:]}
    return {name: torch.tensor([i for k in ks for i in groups[keys[k]]], dtype=torch.long)
            for name, ks in parts.items()}


def preference_records(cfg, policy, policy_path, corpus, human, device) -> list[dict]:
    """Stage 2: the labelled comparisons of ``<workdir>/preferences.jsonl``, made by sampling
    the policy and asking the scripted human when the file is missing or was made with other
    settings (its ``.meta.json`` sidecar), else read back; a JSONL without the sidecar is the
    user's own (e.g. real human labels) and is used as it is."""
    m = cfg.model
    path = Path(m.workdir) / "preferences.jsonl"
    made_with = {"n_pairs": m.n_pairs, "prompt_len": m.prompt_len,
                 "completion_len": m.completion_len, "samples_per_prompt": m.samples_per_prompt,
                 "temperature": m.temperature, "min_gap": m.min_gap, "seed": assets_seed(cfg),
                 "keywords": list(m.keywords), "policy": str(policy_path)}
    meta = path.with_suffix(".meta.json")
    stale = meta.exists() and json.loads(meta.read_text()) != made_with
    if stale:
        _log(f"{path} was made with other settings than this run's ({meta}): rebuilding it")
    if path.exists() and not m.regenerate and not stale:
        records = read_preferences(path)
    else:
        _log(f"sampling and labelling {m.n_pairs} preference pairs -> {path}")
        records = make_preference_pairs(policy, corpus, human, m.n_pairs,
                                        m.prompt_len, m.completion_len,
                                        samples_per_prompt=m.samples_per_prompt,
                                        temperature=m.temperature, seed=assets_seed(cfg),
                                        min_gap=m.min_gap, all_pairs=True,
                                        device=device, log=_log)
        write_preferences(path, records)
        atomic_write_bytes(meta, json.dumps(made_with, indent=1).encode())
    return records


class _RLHFTask(Task):
    """What both RLHF stages start from: the corpus, the pretrained policy (``self.policy``, its
    checkpoint ``self.policy_path``) and the scripted human."""

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        self.corpus = data
        self.policy, self.policy_path = prepare_policy(cfg, data, device)
        self.human = ScriptedHuman(cfg.model.keywords, corpus_words(data.text))

    def _load_pairs(self) -> None:
        """The comparisons (stage 2) as padded token rows ``self.chosen`` / ``self.rejected``
        (prompt + completion, with their lengths) and the train / val / test split by prompt."""
        cfg, m = self.cfg, self.cfg.model
        records = preference_records(cfg, self.policy, self.policy_path, self.corpus, self.human,
                                     self.device)
        self.records = records
        enc = self.corpus.encode
        self.chosen, self.chosen_len = pad_right([enc(r["prompt"] + r["chosen"]) for r in records],
                                                 m.block_size)
        self.rejected, self.rejected_len = pad_right(
            [enc(r["prompt"] + r["rejected"]) for r in records], m.block_size)
        self.split_idx = split_by_group(records)
        if cfg.trainer.batch_size > len(self.split_idx["train"]):
            raise ConfigError(f"trainer.batch_size: {cfg.trainer.batch_size} exceeds the "
                              f"{len(self.split_idx['train'])} training comparisons")

    @staticmethod
    def _token_logps(net: nn.Module, seq: torch.Tensor, first: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """log π(seq[:, t] | seq[:, :t]) for t = first … L−1, ``[B, L − first]``, and the hidden
        states they were read from (the state before each token), ``[B, L − first, d]``."""
        h = net.hidden(seq[:, :-1])[:, first - 1:]          # states before tokens first … L−1
        log_pi = F.log_softmax(net.lm_head(h), dim=-1)
        return log_pi.gather(-1, seq[:, first:, None]).squeeze(-1), h

    def _human_scores(self, seq: torch.Tensor) -> torch.Tensor:
        """The scripted human's score of each completion in ``seq [B, P + C]`` (``[B]``)."""
        P = self.cfg.model.prompt_len
        return torch.tensor([self.human.score(self.corpus.decode(s[:P]), self.corpus.decode(s[P:]))
                             for s in seq.cpu()], device=seq.device)

    @torch.no_grad()
    def _score_text(self, prompts: torch.Tensor, comps: torch.Tensor) -> dict[str, float]:
        """The scripted human's mean score, fluency and share of completions with a keyword."""
        n_kw = fl = s = 0.0
        for p, c in zip(prompts.cpu(), comps.cpu()):
            pt, ct = self.corpus.decode(p), self.corpus.decode(c)
            s += self.human.score(pt, ct)
            fl += self.human.fluency(pt, ct)
            n_kw += bool(self.human.keywords_used(pt, ct))
        n = len(prompts)
        return {"human_score": s / n, "fluency": fl / n, "keyword_rate": n_kw / n}


class RewardModelTask(_RLHFTask):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        self._load_pairs()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            rm = _build_reward_model(m, self.corpus.vocab_size)
        if m.rm_init_from_policy:  # InstructGPT: R_θ starts from the supervised policy
            rm.trunk.load_state_dict(self.policy.state_dict())
        self.model = rm.to(device)

    def _rewards(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.device
        r_c = self.model(self.chosen[idx].to(d), self.chosen_len[idx].to(d))
        r_r = self.model(self.rejected[idx].to(d), self.rejected_len[idx].to(d))
        return r_c, r_r

    def draw(self, step):
        tr = self.split_idx["train"]
        return {"idx": tr[batch_indices(len(tr), self.cfg.trainer.batch_size, step, self.cfg.seed)]}

    def training_step(self, step, batch, optimize):
        r_c, r_r = self._rewards(batch["idx"])
        loss = preference_loss(r_c, r_r)  # eq. 2.2
        optimize(loss)
        return {"loss": loss.item(), "accuracy": (r_c > r_r).float().mean().item()}

    def evaluate(self, split):
        idx = self.split_idx[split]
        r_c, r_r = zip(*(self._rewards(chunk) for chunk in idx.split(256)))
        r_c, r_r = torch.cat(r_c), torch.cat(r_r)
        return {"pairwise_accuracy": (r_c > r_r).float().mean().item(),
                "loss": preference_loss(r_c, r_r).item(),
                "margin": (r_c - r_r).mean().item(), "pairs": float(len(idx))}

    def figures(self, out_dir: Path):
        from genmodels.plotting import plt, save_figure  # Agg backend, set once there

        idx = self.split_idx["test"]
        r_c, r_r = zip(*(self._rewards(chunk) for chunk in idx.split(256)))
        gap = (torch.cat(r_c) - torch.cat(r_r)).cpu().numpy()
        out_dir.mkdir(parents=True, exist_ok=True)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(gap, bins=40, color="tab:blue")
        ax.axvline(0, color="k", lw=1)
        ax.set_xlabel("R_θ(chosen) − R_θ(rejected) on held-out comparisons")
        ax.set_ylabel("pairs")
        ax.set_title(f"reward model: held-out accuracy {(gap > 0).mean():.1%}")
        p = out_dir / "reward_margins.png"
        save_figure(fig, p, dpi=110)
        return [p]


class RLHFPPOTask(_RLHFTask):
    progress_metric = "rm_score"
    batch_key = "model.ppo_batch"         # draw's batch: the step's prompts

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        policy = self.policy
        self.ref = copy.deepcopy(policy).eval().requires_grad_(False)   # π_ref, frozen
        if m.reward_source == "model":
            rm_path = m.reward_ckpt or str(Path(m.workdir) / "reward_model.pt")
            self.rm = load_reward_model(rm_path, self.corpus.vocab_size, device)
        else:  # the oracle control: PPO on the hidden preference itself
            self.rm = self._human_scores
        value = nn.Linear(m.lm_embd, 1)
        nn.init.zeros_(value.weight)
        nn.init.zeros_(value.bias)
        self.model = nn.ModuleDict({"policy": policy.train(), "value": value}).to(device)
        g = torch.Generator().manual_seed(2024)
        self.eval_prompts = {s: windows(data.val, m.prompt_len, m.eval_prompts, g)
                             for s in ("val", "test")}
        self.history: list[dict] = []
        # β of eq. 2.3: fixed, or steered towards model.kl_target (Ziegler et al. 2019)
        self.kl_ctl = (AdaptiveKLController(m.kl_beta, m.kl_target, m.kl_gain)
                       if m.kl_target is not None else None)
        self.samples_before = self._samples()

    @property
    def beta(self) -> float:
        return self.kl_ctl.beta if self.kl_ctl is not None else self.cfg.model.kl_beta

    # -------------------------------------------------------------- helpers
    def _logp_values(self, net: nn.Module, seq: torch.Tensor, value_head: nn.Module | None = None):
        """log π(y_t | x, y_<t) of the completion tokens ``[B, C]`` (and V of the state before
        each of them, ``[B, C]``, when ``value_head`` is given)."""
        logp, h = self._token_logps(net, seq, self.cfg.model.prompt_len)
        if value_head is None:
            return logp
        if self.cfg.model.detach_value_trunk:   # the value loss trains the head only
            h = h.detach()
        return logp, value_head(h).squeeze(-1)

    @torch.no_grad()
    def _rollout(self, prompts: torch.Tensor, generator=None):
        m = self.cfg.model
        policy = self.model["policy"]
        comps = sample_completions(policy, prompts, m.completion_len, 1.0, generator)
        seq = torch.cat([prompts, comps], dim=1)             # (B, P + C)
        logp, values = self._logp_values(policy, seq, self.model["value"])
        logp_ref = self._logp_values(self.ref, seq)
        scores = self.rm(seq)                                  # r_θ(x, y), (B,)
        return comps, seq, logp, values, logp_ref, scores

    @torch.no_grad()
    def _samples(self, n: int = 8) -> list[tuple[str, str, float, float]]:
        prompts = self.eval_prompts["test"][:n].to(self.device)
        g = torch.Generator(device=self.device).manual_seed(7)
        comps, seq, *_ , scores = self._rollout(prompts, g)
        return [(self.corpus.decode(p), self.corpus.decode(c), float(r),
                 self.human.score(self.corpus.decode(p), self.corpus.decode(c)))
                for p, c, r in zip(prompts.cpu(), comps.cpu(), scores.cpu())]

    # -------------------------------------------------------------- one PPO iteration
    def draw(self, step):
        m = self.cfg.model
        return {"prompts": windows(self.corpus.train, m.prompt_len, m.ppo_batch).to(self.device)}

    def training_step(self, step, batch, optimize):
        m = self.cfg.model
        # under torchrun each process rolls out its share of the prompts (ppo_batch is global);
        # the completions, advantages and minibatches are its own, gradients are averaged
        prompts = batch["prompts"]
        comps, seq, logp_old, v_old, logp_ref, scores = self._rollout(prompts)
        with torch.no_grad():
            beta = self.beta
            rewards = kl_shaped_rewards(scores, logp_old, logp_ref, beta)   # eq. 2.3, (B, C)
            B, C = rewards.shape
            dones = torch.zeros(C, B)
            dones[-1] = 1.0                                   # the completion ends the episode
            adv, ret = gae(rewards.T, v_old.T, dones.to(rewards.device),
                           torch.zeros(B, device=rewards.device), m.gamma, m.gae_lambda)
            adv, ret = adv.T, ret.T                           # (B, C)
        policy, value_head = self.model["policy"], self.model["value"]
        fracs = []
        for _ in range(m.ppo_epochs):
            for mb in torch.randperm(B, device=self.device).chunk(m.ppo_minibatches):
                logp, v = self._logp_values(policy, seq[mb], value_head)
                a = adv[mb]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg_loss = -ppo_clip_objective(logp, logp_old[mb], a, m.clip_eps)
                v_loss = value_loss(v, ret[mb], old_values=v_old[mb], clip_eps=m.clip_eps)
                loss = pg_loss + m.vf_coef * v_loss
                optimize(loss)
                with torch.no_grad():
                    kl_step = approx_kl(logp.detach(), logp_old[mb])
                    fracs.append(clip_fraction(logp.detach(), logp_old[mb], m.clip_eps))
        kl_ref = (logp_old - logp_ref).sum(1).mean().item()   # sample KL(π‖π_ref) per completion
        if self.kl_ctl is not None:
            self.kl_ctl.update(kl_ref)                       # β for the next iteration
        logs = {"rm_score": scores.mean().item(), "kl_ref": kl_ref, "kl_beta": beta,
                "reward_total": rewards.sum(1).mean().item(), "loss": loss.item(),
                "policy_loss": pg_loss.item(), "value_loss": v_loss.item(),
                "approx_kl": kl_step.item(), "clip_frac": torch.stack(fracs).mean().item(),
                **self._score_text(prompts, comps)}
        self.history.append({"step": step + 1, **logs})
        return logs

    def evaluate(self, split):
        m = self.cfg.model
        prompts = self.eval_prompts[split].to(self.device)
        g = torch.Generator(device=self.device).manual_seed(11 if split == "val" else 13)
        comps, seq, logp, _, logp_ref, scores = self._rollout(prompts, g)
        kl = (logp - logp_ref).sum(1).mean().item()
        out = {"rm_score": scores.mean().item(), "kl_ref": kl,
               "kl_within_budget": float(kl <= m.kl_budget), **self._score_text(prompts, comps)}
        with torch.no_grad():
            ref_comps = sample_completions(self.ref, prompts, m.completion_len, 1.0,
                                           torch.Generator(device=self.device).manual_seed(17))
            ref_seq = torch.cat([prompts, ref_comps], 1)
            out["ref_rm_score"] = self.rm(ref_seq).mean().item()
            out.update({f"ref_{k}": v for k, v in self._score_text(prompts, ref_comps).items()})
        return out

    def figures(self, out_dir: Path):
        from genmodels.plotting import plt, save_figure  # Agg backend, set once there

        m = self.cfg.model
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        if self.history:
            kl = [h["kl_ref"] for h in self.history]
            fig, axes = plt.subplots(1, 2, figsize=(10, 4))
            sc = axes[0].scatter(kl, [h["rm_score"] for h in self.history],
                                 c=[h["step"] for h in self.history], cmap="viridis", s=12)
            axes[0].axvline(m.kl_budget, color="tab:red", ls="--", lw=1,
                            label=f"KL budget {m.kl_budget:g}")
            axes[0].set_xlabel("KL(π ‖ π_ref) per completion (nats)")
            axes[0].set_ylabel("reward-model score R_θ" if m.reward_source == "model"
                               else "scripted human score (the oracle reward)")
            axes[0].set_title(f"reward vs KL (β = {m.kl_beta:g})" if self.kl_ctl is None else
                              f"reward vs KL (adaptive β → KL {m.kl_target:g}, "
                              f"β {m.kl_beta:g} → {self.beta:.3g})")
            axes[0].legend(fontsize=8)
            fig.colorbar(sc, ax=axes[0], label="PPO step")
            steps = [h["step"] for h in self.history]
            axes[1].plot(steps, [h["human_score"] for h in self.history], label="scripted human score")
            axes[1].plot(steps, [h["keyword_rate"] for h in self.history], label="share with a keyword")
            axes[1].plot(steps, [h["fluency"] for h in self.history], label="fluency")
            axes[1].set_xlabel("PPO step")
            axes[1].set_title("the hidden preference, measured directly")
            axes[1].legend(fontsize=8)
            axes[1].grid(alpha=0.3)
            p = out_dir / "reward_vs_kl.png"
            save_figure(fig, p, dpi=110)
            paths.append(p)
        after = self._samples()
        lines = ["# RLHF samples: the same prompts and sampling seed, before and after PPO", "",
                 "R = reward-model score, H = scripted human score", ""]
        for (p, c0, r0, h0), (_, c1, r1, h1) in zip(self.samples_before, after):
            lines += [f"prompt: `{p!r}`", f"- before (R={r0:+.2f}, H={h0:.2f}): `{c0!r}`",
                      f"- after  (R={r1:+.2f}, H={h1:.2f}): `{c1!r}`", ""]
        p = out_dir / "samples_before_after.md"
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(p)
        return paths

    def state_dict(self):
        out = {"history": list(self.history)}
        if self.kl_ctl is not None:
            out["kl_ctl"] = self.kl_ctl.state_dict()
        return out

    def load_state_dict(self, state):
        self.history = list(state["history"])
        if self.kl_ctl is not None and "kl_ctl" in state:
            self.kl_ctl.load_state_dict(state["kl_ctl"])
