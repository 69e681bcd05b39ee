"""Schemas of the reinforcement-learning family for the Hydra ``model`` group.

* ``ppo_schema`` (family ``ppo``): PPO on a gymnasium environment (configs/model/ppo_mlp.yaml);
  one trainer step = one rollout of ``num_envs × num_steps`` transitions plus its update epochs.
* ``rlhf_reward_schema`` (family ``rlhf_reward``): the policy run, the preference data set and
  the reward model R_θ of eq. 2.2 (configs/model/rlhf_reward.yaml); the text comes from the data
  group (``data=shakespeare``), like every text experiment's.
* ``rlhf_ppo_schema`` (family ``rlhf_ppo``): PPO on the char-LM policy with the per-token KL
  penalty of eq. 2.3 (configs/model/rlhf_ppo.yaml).

The trainer's own keys do the generic work: ``trainer.max_steps`` (PPO iterations),
``trainer.optim`` (Adam, lr, eps), ``trainer.scheduler`` (``linear`` = PPO's LR annealing) and
``trainer.grad_clip`` (PPO's max gradient norm).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from genmodels.train.config import ModelConfig, choice, positive, register_model, unit


@dataclass
class PPOConfig(ModelConfig):
    family: str = "ppo"
    arch: str = "mlp"                 # mlp: separate actor and critic MLPs (CleanRL's Agent)
    env_id: str = "CartPole-v1"       # a gymnasium environment with a discrete action space
    vectorization: str = "vector_entry_point"  # sync (SyncVectorEnv) | vector_entry_point (the env's own numpy-vectorised class, e.g. CartPoleVectorEnv) | async
    num_envs: int = 4                 # parallel environments N
    num_steps: int = 128              # rollout length T per environment and PPO iteration
    hidden: int = 64                  # width of each hidden layer (actor and critic)
    layers: int = 2                   # hidden layers per network
    activation: str = "tanh"          # tanh | relu
    gamma: float = 0.99               # discount γ (eq. 2.1)
    gae_lambda: float = 0.95          # GAE λ
    update_epochs: int = 4            # passes over each rollout
    num_minibatches: int = 4          # minibatches per pass (must divide num_envs × num_steps)
    clip_eps: float = 0.2             # ε of eq. 2.4 (also the value clipping range)
    clip_vloss: bool = True           # clipped value loss (PPO implementations' variant)
    norm_adv: bool = True             # normalise advantages per minibatch
    ent_coef: float = 0.01            # entropy bonus coefficient
    vf_coef: float = 0.5              # value-loss coefficient
    target_kl: Optional[float] = None  # stop the epochs of an iteration early above this approx-KL
    reward_scale: float = 1.0         # rewards are multiplied by this for learning (not for the logged returns)
    bootstrap_truncated: bool = True  # at a time-limit truncation add γV(s_final) to the reward (CleanRL: false)
    eval_episodes: int = 20           # episodes per evaluation
    eval_seed: int = 12345            # evaluation environments' seed (val: eval_seed, test: eval_seed + 1)
    eval_greedy: bool = True          # evaluate the argmax action (false: sample)
    target_return: float = 475.0      # "solved": mean of the last return_window episodic returns ≥ this
    return_window: int = 100

    def problems(self):
        yield from choice(self, "arch", ("mlp",))
        yield from choice(self, "vectorization", ("sync", "vector_entry_point", "async"))
        yield from choice(self, "activation", ("tanh", "relu"))
        for name in ("num_envs", "num_steps", "hidden", "layers", "update_epochs",
                     "num_minibatches", "clip_eps", "eval_episodes", "return_window"):
            yield from positive(self, name)
        yield from positive(self, "reward_scale")
        for name in ("ent_coef", "vf_coef", "eval_seed"):
            yield from positive(self, name, allow_zero=True)
        yield from positive(self, "target_kl")
        yield from unit(self, "gamma")
        yield from unit(self, "gae_lambda")
        batch = self.num_envs * self.num_steps
        if self.num_minibatches > 0 and batch % self.num_minibatches:
            yield "num_minibatches", (f"must divide the batch num_envs × num_steps = {batch}, "
                                      f"got {self.num_minibatches}")


@dataclass
class RLHFRewardConfig(ModelConfig):
    """Stage 1–3 of the InstructGPT recipe in miniature: pretrain (or load) the char-LM policy,
    sample completion pairs, label them with the scripted "human", train R_θ (eq. 2.2)."""
    family: str = "rlhf_reward"
    arch: str = "gpt"                 # the reward model: the GPT trunk + a scalar head
    workdir: str = "outputs/rlhf_assets"  # where the policy run (<workdir>/policy) and the preference JSONL live (shared by rlhf_ppo)
    policy: Optional[str] = None      # a gpt run (folder, last.pt or outputs/<run_name>) to use as the policy; null: <workdir>/policy, trained by the trainer when missing
    preference: str = "keywords"      # keywords: the scripted human's hidden preference
    keywords: List[str] = field(default_factory=lambda: ["love", "king", "lord", "death", "heart", "good"])
    # the policy (char LM)
    lm_layers: int = 2
    lm_heads: int = 4
    lm_embd: int = 96
    block_size: int = 64
    lm_steps: int = 1500              # pretraining steps of the policy run (0: it must exist)
    lm_batch: int = 32
    lm_lr: float = 3e-3
    # the preference data set
    prompt_len: int = 24              # characters of context taken from the corpus
    completion_len: int = 32          # characters the policy writes
    n_pairs: int = 10000              # labelled comparisons (80 / 10 / 10 % train / val / test, split by prompt)
    samples_per_prompt: int = 4       # K completions ranked per prompt; every pair with a clear preference is kept
    min_gap: float = 0.25             # the scripted human abstains when two scores differ by less
    temperature: float = 1.0
    regenerate: bool = False          # retrain the policy run and rebuild the data set even if <workdir> has them (else they are reused)
    assets_seed: int | None = None    # seed of the policy run and of the preference sampling (None: the run's seed); fix it to vary only the reward model's / PPO's seed over the same assets
    # the reward model
    rm_layers: int = 2
    rm_heads: int = 4
    rm_embd: int = 64
    rm_init_from_policy: bool = False  # initialise the reward trunk from the policy's weights (then rm_layers/heads/embd are the policy's)
    rm_pooling: str = "mean"          # mean: average a per-token head over the sequence | last: the head on the last token

    def problems(self):
        yield from choice(self, "arch", ("gpt",))
        yield from choice(self, "preference", ("keywords",))
        yield from choice(self, "rm_pooling", ("mean", "last"))
        for name in ("lm_layers", "lm_heads", "lm_embd", "block_size", "lm_batch", "lm_lr",
                     "prompt_len", "completion_len", "n_pairs", "temperature", "rm_layers",
                     "samples_per_prompt",
                     "rm_heads", "rm_embd"):
            yield from positive(self, name)
        yield from positive(self, "lm_steps", allow_zero=True)
        yield from positive(self, "min_gap", allow_zero=True)
        if self.assets_seed is not None:
            yield from positive(self, "assets_seed", allow_zero=True)
        if self.samples_per_prompt == 1:
            yield "samples_per_prompt", "must be >= 2 to form a comparison"
        if not self.keywords:
            yield "keywords", "must name at least one word"
        if self.prompt_len + self.completion_len > self.block_size:
            yield "block_size", (f"must hold prompt_len + completion_len = "
                                 f"{self.prompt_len + self.completion_len}, got {self.block_size}")
        if self.n_pairs < 20:
            yield "n_pairs", f"must be >= 20 (10 % are held out), got {self.n_pairs}"


@dataclass
class RLHFPPOConfig(RLHFRewardConfig):
    """Stage 4: PPO on the policy against R_θ with a per-token KL penalty to π_ref (eq. 2.3)."""
    family: str = "rlhf_ppo"
    reward_source: str = "model"      # model: the learnt R_θ (RLHF) | human: the scripted human's score itself (an oracle control)
    reward_ckpt: Optional[str] = None  # checkpoint of an rlhf_reward run (<run>/checkpoints/last.pt); null: <workdir>/reward_model.pt
    kl_beta: float = 0.1              # β of eq. 2.3
    kl_budget: float = 6.0            # the KL(π‖π_ref) per completion the run must stay within (reported)
    kl_target: Optional[float] = None  # adaptive β (Ziegler et al. 2019): steer KL(π‖π_ref) per completion to this; null: β fixed at kl_beta
    kl_gain: float = 0.1              # K_β of the adaptive controller: β changes by at most ±0.2·K_β per PPO iteration
    ppo_batch: int = 64               # completions sampled per PPO iteration
    ppo_epochs: int = 2
    ppo_minibatches: int = 2
    clip_eps: float = 0.2
    vf_coef: float = 0.5
    detach_value_trunk: bool = True   # the value head reads the policy's hidden states through a stop-gradient, so the value loss (its scale grows with β·KL) cannot reshape the policy (false: shared trunk)
    gamma: float = 1.0
    gae_lambda: float = 0.95
    eval_prompts: int = 128

    def problems(self):
        yield from super().problems()
        yield from positive(self, "kl_beta", allow_zero=True)
        yield from positive(self, "vf_coef", allow_zero=True)
        yield from positive(self, "kl_gain")
        if self.kl_target is not None:
            yield from positive(self, "kl_target")
            if self.kl_beta == 0:
                yield "kl_beta", "must be > 0 when kl_target is set (the adaptive β scales it)"
        yield from choice(self, "reward_source", ("model", "human"))
        for name in ("kl_budget", "ppo_batch", "ppo_epochs", "ppo_minibatches", "clip_eps",
                     "eval_prompts"):
            yield from positive(self, name)
        yield from unit(self, "gamma")
        yield from unit(self, "gae_lambda")
        if self.ppo_minibatches > 0 and self.ppo_batch % self.ppo_minibatches:
            yield "ppo_minibatches", f"must divide ppo_batch={self.ppo_batch}"


@dataclass
class RLHFDPOConfig(RLHFRewardConfig):
    """DPO (Rafailov et al., 2023) on the same policy and comparisons as rlhf_reward / rlhf_ppo:
    no reward model, no sampling during training."""
    family: str = "rlhf_dpo"
    dpo_beta: float = 0.1             # β of the DPO loss (the implicit KL penalty's strength)
    eval_prompts: int = 128           # held-out prompts completed and scored at each evaluation (as rlhf_ppo)

    def problems(self):
        yield from super().problems()
        yield from positive(self, "dpo_beta")
        yield from positive(self, "eval_prompts")


register_model("ppo_schema", PPOConfig, family="ppo", task="genmodels.rl.task_ppo:PPOTask")
register_model("rlhf_reward_schema", RLHFRewardConfig, family="rlhf_reward",
               task="genmodels.rl.task_rlhf:RewardModelTask")
register_model("rlhf_ppo_schema", RLHFPPOConfig, family="rlhf_ppo",
               task="genmodels.rl.task_rlhf:RLHFPPOTask")
register_model("rlhf_dpo_schema", RLHFDPOConfig, family="rlhf_dpo",
               task="genmodels.rl.task_dpo:DPOTask")
