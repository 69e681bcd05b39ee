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

Resume is exact: ``state_dict`` carries the pickled vector environment (its physics state, time
counters and random generator), the last observation, the episode bookkeeping and the clock; the
trainer restores the model, the optimiser and the torch RNG (actions and minibatch shuffles draw
from torch's global generator only). An environment that cannot be pickled falls back to a fresh
``reset`` on resume, with a warning — then the resumed run differs from an uninterrupted one.
"""

from __future__ import annotations

import pickle
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from genmodels.rl.agent import ActorCritic
from genmodels.rl.envs import evaluate_policy, make_vec_env
from genmodels.rl.ppo import approx_kl, clip_fraction, ppo_clip_objective, value_loss
from genmodels.rl.returns import gae
from genmodels.train.task import Task

__all__ = ["PPOTask", "plot_episodic_returns"]


class PPOTask(Task):
    progress_metric = "return_mean"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        self.envs = make_vec_env(m.env_id, m.num_envs, m.vectorization)
        obs_dim = int(np.prod(self.envs.single_observation_space.shape))
        n_actions = int(self.envs.single_action_space.n)
        self.model = ActorCritic(obs_dim, n_actions, m.hidden, m.layers, m.activation).to(device)
        obs, _ = self.envs.reset(seed=cfg.seed)
        self.next_obs = np.asarray(obs, dtype=np.float32).reshape(m.num_envs, obs_dim)
        self.prev_done = np.zeros(m.num_envs, dtype=bool)   # the next step call is a reset step
        self.ep_return = np.zeros(m.num_envs)
        self.ep_length = np.zeros(m.num_envs, dtype=np.int64)
        self.episodes: list[tuple[int, float]] = []        # (env steps when it ended, return)
        self.global_step = 0                                # environment steps taken (all envs)
        self.elapsed_s = 0.0                                # wall time inside training steps
        self.solved: dict | None = None
        self._obs_dim = obs_dim

    # ------------------------------------------------------------------ rollout
    def _rollout(self):
        m, T, N = self.cfg.model, self.cfg.model.num_steps, self.cfg.model.num_envs
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
    def training_step(self, step, optimize):
        self._t0 = time.perf_counter()
        m = self.cfg.model
        obs, actions, logp_old, values, rewards, dones, truncs, valid, last_value = self._rollout()

        rewards_t = torch.from_numpy(rewards) * m.reward_scale
        if m.bootstrap_truncated:
            # a truncated episode did not end: its last reward also earns γ V(s_final), where
            # s_final is the observation stored at t+1 (next-step autoreset) or after the rollout
            next_values = torch.cat([values[1:], last_value[None]])  # (T, N)
            rewards_t = rewards_t + m.gamma * torch.from_numpy(truncs).float() * next_values
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
            if m.target_kl is not None and kl.item() > m.target_kl:
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
        try:
            envs = pickle.dumps(self.envs)
        except Exception as err:  # pragma: no cover - depends on the environment
            warnings.warn(f"PPOTask: the environment cannot be pickled ({err}); a resume will "
                          f"reset it, so it will not reproduce an uninterrupted run exactly")
            envs = None
        return {"envs": envs, "next_obs": self.next_obs.copy(), "prev_done": self.prev_done.copy(),
                "ep_return": self.ep_return.copy(), "ep_length": self.ep_length.copy(),
                "episodes": list(self.episodes), "global_step": self.global_step,
                "elapsed_s": self.elapsed_s, "solved": self.solved}

    def load_state_dict(self, state):
        if state.get("envs") is not None:
            self.envs.close()
            self.envs = pickle.loads(state["envs"])
            self.next_obs = state["next_obs"].copy()
            self.prev_done = state["prev_done"].copy()
            self.ep_return = state["ep_return"].copy()
            self.ep_length = state["ep_length"].copy()
        else:  # the fresh env from __init__: a new episode in every copy
            warnings.warn("PPOTask: resuming without the environment's state (it was not "
                          "picklable): every episode restarts")
        self.episodes = list(state["episodes"])
        self.global_step = state["global_step"]
        self.elapsed_s = state["elapsed_s"]
        self.solved = state["solved"]


def plot_episodic_returns(episodes, path, window: int = 100, target: float | None = None,
                          solved: dict | None = None, title: str = "PPO") -> Path:
    """Every episode's return (dots) and the mean of the last ``window`` (line) vs env steps."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
