"""PPO (eq. 2.4) as a trainer Task: one trainer step = one rollout + its update epochs.

The loop, per step (iteration) k:

1. **rollout**: the vector environment (kept across steps) is stepped ``num_steps`` times with
   actions a ~ π_φold(·|s); observations, actions, log π_φold(a|s), V(s), rewards and episode
   ends go into a ``[T, N]`` buffer;
2. **advantages**: :func:`~genmodels.rl.returns.gae` gives Â_t and the value targets; at a
   time-limit truncation the reward gets γ V(s_final) added (the episode did not really end);
3. **update**: ``update_epochs`` passes over the shuffled batch in ``num_minibatches``
   minibatches, each one optimiser step on
   −L^CLIP (:func:`ppo_clip_objective`) + c_v · value loss − c_e · entropy,
   with the trainer doing Adam, gradient clipping (``trainer.grad_clip``) and the linear LR
   annealing (``trainer.scheduler.name=linear``).

Logged per step: the mean of the last ``return_window`` episodic returns, losses, entropy,
approx-KL (:func:`approx_kl`), clip fraction, explained variance, steps per second, and the wall
time and environment steps at which the run was first "solved".

Resume is exact for CartPole with ``vectorization=vector_entry_point``: ``state_dict`` carries
the ``CartPoleVectorEnv``'s physics state, time counters, pending autoresets and random
generator (:func:`vector_env_state`), the last observation, the episode bookkeeping and the
clock; the trainer restores the model, the optimiser and the torch RNG (actions and minibatch
shuffles draw from torch's global generator only). Other environments (and ``sync``/``async``
vectorisation) cannot be restored from the weights-only checkpoint: a resume resets them, with a
warning, so every episode restarts and the run continues close to, but not exactly like, an
uninterrupted one.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch

from genmodels._checks import check_range, check_same_shape, check_tensor
from genmodels.rl.agent import ActorCritic
from genmodels.rl.envs import evaluate_policy, make_vec_env
from genmodels.rl.ppo import approx_kl, clip_fraction, ppo_clip_objective, value_loss
from genmodels.rl.returns import gae
from genmodels.train import dist
from genmodels.train.config import ConfigError
from genmodels.train.task import Task

__all__ = ["PPOTask", "plot_episodic_returns", "bootstrap_truncated", "vector_env_state",
           "load_vector_env_state"]


def bootstrap_truncated(rewards: torch.Tensor, truncated: torch.Tensor, values: torch.Tensor,
                        last_value: torch.Tensor, gamma: float) -> torch.Tensor:
    """r_t + γ V(s_final) where the episode was cut by a time limit after step t (``[T, N]``).

    A truncated episode did not really end, so GAE (which stops at ``dones``) must still see the
    value of the state it was cut in. With next-step autoreset that final observation is the one
    stored at step t+1 (its value ``values[t+1]``), or the observation after the rollout
    (``last_value``) when t is the rollout's last step.
    """
    check_tensor("rewards", rewards, ndim=2)
    check_tensor("values", values, ndim=2)
    check_tensor("last_value", last_value, ndim=1)
    check_same_shape(("values", "rewards"), values, rewards)
    check_tensor("truncated", truncated, floating=False)
    check_same_shape(("truncated", "rewards"), truncated, rewards)
    if tuple(last_value.shape) != tuple(values.shape[1:]):
        raise ValueError(f"last_value: expected shape {list(values.shape[1:])}, got "
                         f"{list(last_value.shape)}")
    check_range("gamma", gamma, 0.0, 1.0)
    next_values = torch.cat([values[1:], last_value[None]])  # V(s_{t+1}), (T, N)
    return rewards + gamma * truncated.to(rewards.dtype) * next_values


class PPOTask(Task):
    progress_metric = "return_mean"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        # model.num_envs is the global count: this process steps its share of them (all of them
        # in one process; under torchrun envs i·n … (i+1)·n − 1 of process i), reset with seed +
        # the index of its first, and keeps its own rollout buffer and minibatches; the gradients
        # are averaged over the processes (together: num_envs × num_steps per update)
        try:
            mine = self.share(m.num_envs, "model.num_envs")
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.num_envs = n = len(mine)
        self._first_env = mine.start
        self.envs = make_vec_env(m.env_id, n, m.vectorization)
        obs_dim = int(np.prod(self.envs.single_observation_space.shape))
        n_actions = int(self.envs.single_action_space.n)
        self.model = ActorCritic(obs_dim, n_actions, m.hidden, m.layers, m.activation).to(device)
        obs, _ = self.envs.reset(seed=cfg.seed + mine.start)
        self.next_obs = np.asarray(obs, dtype=np.float32).reshape(n, obs_dim)
        self.prev_done = np.zeros(n, dtype=bool)   # the next step call is a reset step
        self.ep_return = np.zeros(n)
        self.ep_length = np.zeros(n, dtype=np.int64)
        self.episodes: list[tuple[int, float]] = []        # (env steps when it ended, return)
        self.global_step = 0                                # environment steps taken (all envs)
        self.elapsed_s = 0.0                                # wall time inside training steps
        self.solved: dict | None = None
        self._obs_dim = obs_dim

    # ------------------------------------------------------------------ rollout
    def _rollout(self):
        m, T, N = self.cfg.model, self.cfg.model.num_steps, self.num_envs
        obs = torch.zeros(T, N, self._obs_dim)
        actions = torch.zeros(T, N, dtype=torch.long)
        logp = torch.zeros(T, N)
        values = torch.zeros(T, N)
        rewards = np.zeros((T, N), dtype=np.float32)
        dones = np.zeros((T, N), dtype=bool)       # the episode ended after step t
        truncs = np.zeros((T, N), dtype=bool)      # ... by the time limit
        valid = np.zeros((T, N), dtype=bool)       # step t was a transition (not an autoreset)
        for t in range(T):
            o = torch.from_numpy(self.next_obs)
            a, lp, v = self.model.act(o.to(self.device))
            obs[t], actions[t], logp[t], values[t] = o, a.cpu(), lp.cpu(), v.cpu()
            valid[t] = ~self.prev_done
            next_obs, r, term, trunc, _ = self.envs.step(a.cpu().numpy())
            self.next_obs = np.asarray(next_obs, dtype=np.float32).reshape(N, self._obs_dim)
            done = np.logical_or(term, trunc)
            rewards[t], dones[t], truncs[t] = r, done, trunc
            self._track_episodes(np.asarray(r, dtype=np.float64), done, valid[t])
            self.prev_done = done
        with torch.no_grad():
            last_value = self.model.value(torch.from_numpy(self.next_obs).to(self.device)).cpu()
        return obs, actions, logp, values, rewards, dones, truncs, valid, last_value

    def _track_episodes(self, r: np.ndarray, done: np.ndarray, valid: np.ndarray) -> None:
        m = self.cfg.model
        self.ep_return += r * valid
        self.ep_length += valid
        self.global_step += int(valid.sum())
        for i in np.flatnonzero(done):
            self.episodes.append((self.global_step, float(self.ep_return[i])))
            self.ep_return[i], self.ep_length[i] = 0.0, 0
            if self.solved is None and len(self.episodes) >= m.return_window:
                recent = [ret for _, ret in self.episodes[-m.return_window:]]
                if np.mean(recent) >= m.target_return:
                    self.solved = {"env_steps": self.global_step, "episodes": len(self.episodes),
                                   "time_s": self.elapsed_s + time.perf_counter() - self._t0}

    # ------------------------------------------------------------------ one PPO iteration
    def training_step(self, step, batch, optimize):
        self._t0 = time.perf_counter()
        m = self.cfg.model
        obs, actions, logp_old, values, rewards, dones, truncs, valid, last_value = self._rollout()

        rewards_t = torch.from_numpy(rewards) * m.reward_scale
        if m.bootstrap_truncated:
            rewards_t = bootstrap_truncated(rewards_t, torch.from_numpy(truncs), values,
                                            last_value, m.gamma)
        advantages, returns = gae(rewards_t, values, torch.from_numpy(dones), last_value,
                                  m.gamma, m.gae_lambda)

        keep = torch.from_numpy(valid.reshape(-1)).nonzero().squeeze(1)  # drop autoreset steps
        b_obs = obs.reshape(-1, self._obs_dim)[keep].to(self.device)
        b_actions = actions.reshape(-1)[keep].to(self.device)
        b_logp = logp_old.reshape(-1)[keep].to(self.device)
        b_values = values.reshape(-1)[keep].to(self.device)
        b_adv = advantages.reshape(-1)[keep].to(self.device)
        b_returns = returns.reshape(-1)[keep].to(self.device)

        clip_fracs, n_updates = [], 0
        for _ in range(m.update_epochs):
            perm = torch.randperm(len(keep), device=self.device)
            for mb in perm.chunk(m.num_minibatches):
                logp_new, entropy, v_new = self.model.evaluate_actions(b_obs[mb], b_actions[mb])
                mb_adv = b_adv[mb]
                if m.norm_adv and len(mb) > 1:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = -ppo_clip_objective(logp_new, b_logp[mb], mb_adv, m.clip_eps)
                if m.clip_vloss:
                    v_loss = value_loss(v_new, b_returns[mb], old_values=b_values[mb],
                                        clip_eps=m.clip_eps)
                else:
                    v_loss = value_loss(v_new, b_returns[mb])
                ent = entropy.mean()
                loss = pg_loss - m.ent_coef * ent + m.vf_coef * v_loss
                optimize(loss)
                n_updates += 1
                with torch.no_grad():
                    kl = approx_kl(logp_new.detach(), b_logp[mb])
                    clip_fracs.append(clip_fraction(logp_new.detach(), b_logp[mb], m.clip_eps))
            # (under torchrun the ranks' mean KL, so that every rank stops at the same epoch)
            if m.target_kl is not None and dist.all_mean(kl).item() > m.target_kl:
                break

        var_y = b_returns.var()
        explained_var = (1 - (b_returns - b_values).var() / var_y).item() if var_y > 0 else 0.0
        self.elapsed_s += time.perf_counter() - self._t0
        recent = [ret for _, ret in self.episodes[-m.return_window:]]
        logs = {"return_mean": float(np.mean(recent)) if recent else 0.0,
                "episodes": float(len(self.episodes)), "env_steps": float(self.global_step),
                "loss": loss.item(), "policy_loss": pg_loss.item(), "value_loss": v_loss.item(),
                "entropy": ent.item(), "approx_kl": kl.item(),
                "clip_frac": torch.stack(clip_fracs).mean().item(),
                "explained_variance": explained_var, "updates": float(n_updates),
                "sps": self.global_step / max(self.elapsed_s, 1e-9),
                "wall_s": self.elapsed_s}
        if self.solved is not None:
            logs["solved_env_steps"] = float(self.solved["env_steps"])
            logs["solved_time_s"] = self.solved["time_s"]
        return logs

    # ------------------------------------------------------------------ evaluation, figures
    def evaluate(self, split):
        m = self.cfg.model
        seed = m.eval_seed + (1 if split == "test" else 0)
        returns = evaluate_policy(self.model, m.env_id, m.eval_episodes, seed, m.vectorization,
                                  greedy=m.eval_greedy)
        out = {"return_mean": float(returns.mean()), "return_std": float(returns.std()),
               "return_min": float(returns.min()), "episodes": float(m.eval_episodes)}
        recent = [ret for _, ret in self.episodes[-m.return_window:]]
        out["train_return_mean"] = float(np.mean(recent)) if recent else 0.0
        out["solved_env_steps"] = float(self.solved["env_steps"]) if self.solved else -1.0
        out["solved_time_s"] = float(self.solved["time_s"]) if self.solved else -1.0
        return out

    def figures(self, out_dir: Path):
        m = self.cfg.model
        return [plot_episodic_returns(self.episodes, out_dir / "episodic_return.png",
                                      window=m.return_window, target=m.target_return,
                                      solved=self.solved, title=f"PPO on {m.env_id}")]

    # ------------------------------------------------------------------ resume
    def state_dict(self):
        envs = vector_env_state(self.envs)
        if envs is None and not getattr(self, "_warned_env_state", False):
            self._warned_env_state = True
            warnings.warn(f"PPOTask: the state of {type(self.envs.unwrapped).__name__} is not "
                          f"saved (only CartPoleVectorEnv's is); a resume resets it, so it will "
                          f"not reproduce an uninterrupted run exactly")
        t = torch.from_numpy
        return {"envs": envs, "next_obs": t(self.next_obs.copy()),
                "prev_done": t(self.prev_done.copy()), "ep_return": t(self.ep_return.copy()),
                "ep_length": t(self.ep_length.copy()), "episodes": list(self.episodes),
                "global_step": self.global_step, "elapsed_s": self.elapsed_s,
                "solved": self.solved}

    def load_state_dict(self, state):
        if self._first_env > 0:   # the checkpoint holds the first process's environments only
            warnings.warn("PPOTask: resuming under torchrun: ranks other than 0 restart their "
                          "environments")
            state = {**state, "envs": None}
        if state["envs"] is not None:
            load_vector_env_state(self.envs, state["envs"])
            self.next_obs = state["next_obs"].numpy().copy()
            self.prev_done = state["prev_done"].numpy().copy()
            self.ep_return = state["ep_return"].numpy().copy()
            self.ep_length = state["ep_length"].numpy().copy()
        else:  # the freshly reset env of __init__: a new episode in every copy
            warnings.warn("PPOTask: resuming without the environment's state: every episode "
                          "restarts")
        self.episodes = [tuple(e) for e in state["episodes"]]
        self.global_step = state["global_step"]
        self.elapsed_s = state["elapsed_s"]
        self.solved = state["solved"]


_CARTPOLE_VEC_ARRAYS = ("state", "steps", "prev_done")


def vector_env_state(envs) -> dict | None:
    """Everything that determines the future of a ``CartPoleVectorEnv`` — physics state, time
    counters, pending autoresets, reset bounds and its random generator — as tensors and plain
    values (checkpoints load with ``weights_only=True``, so no pickled objects). None for other
    environments (their resume restarts the episodes)."""
    env = envs.unwrapped
    if type(env).__name__ != "CartPoleVectorEnv":
        return None
    out = {k: torch.from_numpy(np.array(getattr(env, k))) for k in _CARTPOLE_VEC_ARRAYS}
    out["low"], out["high"] = float(env.low), float(env.high)
    out["rng"] = env.np_random.bit_generator.state          # nested dict of str/int
    return out


def load_vector_env_state(envs, state: dict) -> None:
    env = envs.unwrapped
    for k in _CARTPOLE_VEC_ARRAYS:
        setattr(env, k, state[k].numpy().copy())
    env.low, env.high = state["low"], state["high"]
    env.np_random.bit_generator.state = state["rng"]


def plot_episodic_returns(episodes, path, window: int = 100, target: float | None = None,
                          solved: dict | None = None, title: str = "PPO") -> Path:
    """Every episode's return (dots) and the mean of the last ``window`` (line) vs env steps."""
    from genmodels.plotting import plt, save_figure  # Agg backend, set once there

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    if episodes:
        steps = np.array([s for s, _ in episodes])
        rets = np.array([r for _, r in episodes])
        cums = np.cumsum(np.insert(rets, 0, 0.0))
        idx = np.arange(1, len(rets) + 1)
        lo = np.maximum(idx - window, 0)
        running = (cums[idx] - cums[lo]) / (idx - lo)
        ax.scatter(steps, rets, s=3, alpha=0.25, color="tab:blue", label="episodic return")
        ax.plot(steps, running, color="tab:red", lw=2, label=f"mean of last {window} episodes")
    if target is not None:
        ax.axhline(target, color="k", ls="--", lw=1, label=f"target {target:g}")
    if solved:
        ax.axvline(solved["env_steps"], color="tab:green", lw=1,
                   label=f"solved: {solved['env_steps']} steps, {solved['time_s']:.1f} s")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path, dpi=110)
    return path
