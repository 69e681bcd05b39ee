"""DPO on the RLHF pipeline's preference data: the policy learns from the comparisons directly.

``DPOTask`` (family ``rlhf_dpo``, experiment ``rlhf_dpo``) starts where ``rlhf_reward_model``
does — the pretrained char-LM policy (``<workdir>/policy``) and the scripted human's comparisons
(``<workdir>/preferences.jsonl``, built when missing) — and skips the reward model and PPO: each
step takes a batch of training comparisons, computes log π(y|x) of the chosen and the rejected
completion under the policy and under the frozen reference (the same pretrained policy), and
minimises :func:`~genmodels.rl.dpo.dpo_loss`. Evaluation is PPO-RLHF's: completions sampled for
the same held-out prompts with the same seeds, scored by the scripted human, and the sample KL to
the reference per completion; plus the held-out comparisons ranked by the implicit reward
β log π/π_ref (the number the reward model's pairwise accuracy is compared with).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from genmodels.data.text import windows
from genmodels.rl.dpo import dpo_loss
from genmodels.rl.preferences import sample_completions
from genmodels.rl.task_rlhf import _RLHFTask
from genmodels.train.task import batch_indices

__all__ = ["DPOTask"]


class DPOTask(_RLHFTask):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        self._load_pairs()
        enc = self.corpus.encode
        # where each completion starts in its (possibly front-truncated) padded row
        self.chosen_start = (self.chosen_len - torch.tensor(
            [len(enc(r["chosen"])) for r in self.records])).clamp(min=1)
        self.rejected_start = (self.rejected_len - torch.tensor(
            [len(enc(r["rejected"])) for r in self.records])).clamp(min=1)
        self.ref = copy.deepcopy(self.policy).eval().requires_grad_(False)   # π_ref, frozen
        self.model = nn.ModuleDict({"policy": self.policy.train()}).to(device)
        g = torch.Generator().manual_seed(2024)      # the prompts rlhf_ppo evaluates on
        self.eval_prompts = {s: windows(data.val, m.prompt_len, m.eval_prompts, g)
                             for s in ("val", "test")}
        self.samples_before = self._samples()

    # -------------------------------------------------------------- log-probabilities
    def _completion_logp(self, net: nn.Module, seq: torch.Tensor, start: torch.Tensor,
                         length: torch.Tensor) -> torch.Tensor:
        """Σ_t log π(y_t | x, y_<t) over the completion tokens ``start ≤ t < length`` of each
        padded row of ``seq [B, L]`` (``[B]``)."""
        d = self.device
        seq, start, length = seq.to(d), start.to(d), length.to(d)
        first = int(start.min())
        logp, _ = self._token_logps(net, seq, first)                          # (B, L − first)
        pos = torch.arange(first, seq.shape[1], device=d)                     # token index
        mask = (pos >= start[:, None]) & (pos < length[:, None])
        return (logp * mask).sum(1)

    def _pair_logps(self, idx: torch.Tensor, net: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        return (self._completion_logp(net, self.chosen[idx], self.chosen_start[idx],
                                      self.chosen_len[idx]),
                self._completion_logp(net, self.rejected[idx], self.rejected_start[idx],
                                      self.rejected_len[idx]))

    # -------------------------------------------------------------- training
    def draw(self, step):
        tr = self.split_idx["train"]
        return {"idx": tr[batch_indices(len(tr), self.cfg.trainer.batch_size, step, self.cfg.seed)]}

    def training_step(self, step, batch, optimize):
        idx = batch["idx"].cpu()
        c, r = self._pair_logps(idx, self.model["policy"])
        with torch.no_grad():
            c_ref, r_ref = self._pair_logps(idx, self.ref)
        loss = dpo_loss(c, r, c_ref, r_ref, self.cfg.model.dpo_beta)
        optimize(loss)
        margin = ((c - c_ref) - (r - r_ref)).detach()
        return {"loss": loss.item(), "accuracy": (margin > 0).float().mean().item(),
                "margin": self.cfg.model.dpo_beta * margin.mean().item()}

    # -------------------------------------------------------------- evaluation
    @torch.no_grad()
    def _generate(self, prompts: torch.Tensor, net: nn.Module, seed: int) -> torch.Tensor:
        g = torch.Generator(device=self.device).manual_seed(seed)
        return sample_completions(net, prompts, self.cfg.model.completion_len, 1.0, g)

    @torch.no_grad()
    def _samples(self, n: int = 8) -> list[tuple[str, str, float]]:
        prompts = self.eval_prompts["test"][:n].to(self.device)
        comps = self._generate(prompts, self.model["policy"], 7)
        return [(self.corpus.decode(p), self.corpus.decode(c),
                 self.human.score(self.corpus.decode(p), self.corpus.decode(c)))
                for p, c in zip(prompts.cpu(), comps.cpu())]

    @torch.no_grad()
    def evaluate(self, split):
        m = self.cfg.model
        policy = self.model["policy"]
        # held-out comparisons ranked by the implicit reward β log π/π_ref
        margins, losses = [], []
        for chunk in self.split_idx[split].split(256):
            c, r = self._pair_logps(chunk, policy)
            c_ref, r_ref = self._pair_logps(chunk, self.ref)
            margins.append((c - c_ref) - (r - r_ref))
            losses.append(dpo_loss(c, r, c_ref, r_ref, m.dpo_beta) * len(chunk))
        margin = torch.cat(margins)
        out = {"pairwise_accuracy": (margin > 0).float().mean().item(),
               "loss": (torch.stack(losses).sum() / len(margin)).item()}
        # completions for the held-out prompts, as rlhf_ppo evaluates them
        prompts = self.eval_prompts[split].to(self.device)
        comps = self._generate(prompts, policy, 11 if split == "val" else 13)
        seq = torch.cat([prompts, comps], 1)
        P, length = prompts.shape[1], torch.full((len(seq),), seq.shape[1])
        start = torch.full((len(seq),), P)
        logp = self._completion_logp(policy, seq, start, length)
        logp_ref = self._completion_logp(self.ref, seq, start, length)
        out["kl_ref"] = (logp - logp_ref).mean().item()     # sample KL(π‖π_ref) per completion
        out.update(self._score_text(prompts, comps))
        ref_comps = self._generate(prompts, self.ref, 17)
        out.update({f"ref_{k}": v for k, v in self._score_text(prompts, ref_comps).items()})
        return out

    def figures(self, out_dir: Path):
        out_dir.mkdir(parents=True, exist_ok=True)
        after = self._samples()
        lines = ["# DPO samples: the same prompts and sampling seed, before and after", "",
                 "H = scripted human score", ""]
        for (p, c0, h0), (_, c1, h1) in zip(self.samples_before, after):
            lines += [f"prompt: `{p!r}`", f"- before (H={h0:.2f}): `{c0!r}`",
                      f"- after  (H={h1:.2f}): `{c1!r}`", ""]
        path = out_dir / "samples_before_after.md"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [path]
