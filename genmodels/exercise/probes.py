"""A small float64 case per exercise, with the expected value computed another way.

The grader calls the student's function on each case and shows *expected* next to *got*. The
expected values come from PyTorch / librosa built-ins (``nn.LSTMCell``, ``F.cross_entropy``,
``torch.distributions``, ``librosa.filters.mel`` …) or a few lines of NumPy written for the case,
never from the library code under test. Each probe returns a list of
``(label, expected, got_fn)``; ``got_fn()`` runs the student's code (it may raise).

Like the registry, this module is loaded by file path in the grader's subprocess, where
``import genmodels`` is the student's workspace.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F

PROBES = {}
TOLERANCE = {}          # name -> (rtol, atol); default (1e-7, 1e-9)


def probe(name, rtol=1e-7, atol=1e-9):
    def register(fn):
        PROBES[name] = fn
        TOLERANCE[name] = (rtol, atol)
        return fn
    return register


def T(x):
    return torch.tensor(np.asarray(x, dtype=np.float64))


def _schedule(betas):
    from genmodels.diffusion import NoiseSchedule
    return NoiseSchedule(T(betas))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# --------------------------------------------------------------------------------- rl
@probe("rl.discounted_return")
def _():
    from genmodels.rl import discounted_return
    r = [[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]]      # two trajectories, time along the last axis
    return [("rewards=[[1, 2, 3], [0, -1, 4]], gamma=0.5",
             [sum(0.5 ** t * x for t, x in enumerate(row)) for row in r],
             lambda: discounted_return(T(r), 0.5))]


@probe("rl.rewards_to_go")
def _():
    from genmodels.rl import rewards_to_go
    r = [1.0, 2.0, 3.0]
    exp = [sum(0.5 ** (k - t) * r[k] for k in range(t, 3)) for t in range(3)]
    return [("rewards=[1, 2, 3], gamma=0.5", exp, lambda: rewards_to_go(T(r), 0.5))]


@probe("rl.preference_loss")
def _():
    from genmodels.rl import preference_loss
    rc, rr = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    return [("r_chosen=[1, 0], r_rejected=[0, 2]", np.mean(np.log1p(np.exp(-(rc - rr)))),
             lambda: preference_loss(T(rc), T(rr)))]


@probe("rl.kl_shaped_rewards")
def _():
    from genmodels.rl import kl_shaped_rewards
    # −β·(log π − log π_ref) per token, score 1.0 added at the last token
    exp = [[-0.1 * (-1.0 + 1.5), -0.1 * (-2.0 + 1.0) + 1.0]]
    return [("scores=[1], logp_policy=[[-1, -2]], logp_ref=[[-1.5, -1]], beta=0.1", exp,
             lambda: kl_shaped_rewards(T([1.0]), T([[-1.0, -2.0]]), T([[-1.5, -1.0]]), 0.1))]


@probe("rl.probability_ratio")
def _():
    from genmodels.rl import probability_ratio
    return [("logp_new=[log .2, log .6], logp_old=[log .4, log .3]", [0.5, 2.0],
             lambda: probability_ratio(T([math.log(0.2), math.log(0.6)]),
                                       T([math.log(0.4), math.log(0.3)])))]


@probe("rl.ppo_clip")
def _():
    from genmodels.rl import ppo_clip_objective
    r, A, eps = np.array([1.5, 0.5, 1.1, 0.7]), np.array([1.0, -1.0, 2.0, 3.0]), 0.2
    exp = np.mean(np.minimum(r * A, np.clip(r, 1 - eps, 1 + eps) * A))
    return [("ratios=[1.5, 0.5, 1.1, 0.7], advantages=[1, -1, 2, 3], clip_eps=0.2", exp,
             lambda: ppo_clip_objective(T(np.log(r)), T(np.zeros(4)), T(A), eps))]


@probe("rl.gae")
def _():
    from genmodels.rl import gae
    r, v, d, last, g, lam = [1.0, 0.0, 1.0], [0.5, 0.2, 0.1], [0.0, 1.0, 0.0], 0.3, 0.9, 0.8
    # Â_t = Σ_l (γλ)^l δ_{t+l} within the episode, written as explicit sums
    nxt = [v[1], v[2], last]
    delta = [r[t] + g * (1 - d[t]) * nxt[t] - v[t] for t in range(3)]
    A = [delta[0] + g * lam * delta[1], delta[1], delta[2]]     # episode ends after t = 1
    R = [a + b for a, b in zip(A, v)]
    return [("rewards=[1,0,1], values=[.5,.2,.1], dones=[0,1,0], last_value=.3, γ=.9, λ=.8"
             " → (advantages, returns)", [A, R],
             lambda: torch.stack([x[:, 0] for x in gae(T([[x] for x in r]), T([[x] for x in v]),
                                                         T([[x] for x in d]), T([last]), g, lam)]))]


# --------------------------------------------------------------------------------- transfer
@probe("transfer.cross_entropy")
def _():
    from genmodels.transfer import cross_entropy
    z, y = T([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]), torch.tensor([1, 0])
    soft = T([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]])
    return [("logits=[[1,2,0],[0,0,3]], targets=[1, 0]", F.cross_entropy(z, y),
             lambda: cross_entropy(z, y)),
            ("same logits, soft targets=[[.5,.5,0],[0,.2,.8]]", F.cross_entropy(z, soft),
             lambda: cross_entropy(z, soft))]


@probe("transfer.sgd_update")
def _():
    from genmodels.transfer import sgd_update

    def got():
        p = T([1.0, -2.0]).requires_grad_()
        p.grad = T([0.5, 1.0])
        sgd_update([p], 0.1)
        return p.detach()
    return [("θ=[1, -2], grad=[0.5, 1], lr=0.1", [0.95, -2.1], got)]


@probe("transfer.fisher")
def _():
    from genmodels.transfer import fisher_diagonal
    w, x, y = np.array([1.0, -1.0]), np.array([[1.0, 2.0], [3.0, 0.0]]), np.array([0.5, 1.0])
    g = (x @ w - y)[:, None] * x                   # per-sample ∂/∂w of ½(w·x − y)²
    exp = (g ** 2).mean(0)[None, :]

    def got():
        model = torch.nn.Linear(2, 1, bias=False).double()
        with torch.no_grad():
            model.weight.copy_(T([w]))
        nll = lambda m, xb, yb: 0.5 * (m(xb)[:, 0] - yb) ** 2
        return fisher_diagonal(model, [(T(x), T(y))], nll)["weight"]
    return [("linear model w=[1,-1], nll=½(w·x−y)², one batch x=[[1,2],[3,0]], y=[.5,1]", exp, got)]


@probe("transfer.ewc_penalty")
def _():
    from genmodels.transfer import ewc_penalty

    def got():
        model = torch.nn.Linear(2, 1, bias=False).double()
        with torch.no_grad():
            model.weight.copy_(T([[1.0, 2.0]]))
        return ewc_penalty(model, {"weight": T([[0.0, 1.0]])}, {"weight": T([[2.0, 4.0]])}, lam=1.5)
    exp = 1.5 * 0.5 * (2.0 * 1.0 ** 2 + 4.0 * 1.0 ** 2)
    return [("θ=[1,2], θ*=[0,1], Ω=[2,4], lam=1.5", exp, got)]


# --------------------------------------------------------------------------------- vae
MU, LOGVAR = [[0.5, -1.0]], [[0.2, -0.7]]


@probe("vae.log_density")
def _():
    from genmodels.vae import gaussian_log_density
    z = [[0.1, 0.3]]
    exp = torch.distributions.Normal(T(MU), T(LOGVAR).mul(0.5).exp()).log_prob(T(z)).sum(-1)
    return [(f"z={z}, mu={MU}, logvar={LOGVAR}", exp,
             lambda: gaussian_log_density(T(z), T(MU), T(LOGVAR)))]


@probe("vae.reparameterize")
def _():
    from genmodels.vae import reparameterize
    eps = [[1.0, -0.5]]
    exp = np.array(MU) + np.array(eps) * np.sqrt(np.exp(LOGVAR))
    return [(f"mu={MU}, logvar={LOGVAR}, eps={eps}", exp,
             lambda: reparameterize(T(MU), T(LOGVAR), T(eps)))]


@probe("vae.kl")
def _():
    from genmodels.vae import kl_to_standard_normal
    q = torch.distributions.Normal(T(MU), T(LOGVAR).mul(0.5).exp())
    exp = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    return [(f"mu={MU}, logvar={LOGVAR}", exp, lambda: kl_to_standard_normal(T(MU), T(LOGVAR)))]


@probe("vae.elbo")
def _():
    from genmodels.vae import elbo
    x, logits = T([[1.0, 0.0, 1.0]]), T([[[0.5, -1.0, 2.0]], [[1.5, 0.0, -1.0]]])  # L = 2
    log_px = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits),
                                                 reduction="none").sum(-1).mean(0)
    q = torch.distributions.Normal(T(MU), T(LOGVAR).mul(0.5).exp())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    return [(f"x=[[1,0,1]], L=2 samples of logits [[.5,-1,2]], [[1.5,0,-1]], mu={MU}, logvar={LOGVAR}",
             log_px - kl, lambda: elbo(x, logits, T(MU), T(LOGVAR)))]


# --------------------------------------------------------------------------------- gan
REAL, FAKE = [2.0, -1.0, 0.5], [-3.0, 1.0]


@probe("gan.value")
def _():
    from genmodels.gan import gan_value
    exp = np.mean(np.log(_sigmoid(np.array(REAL)))) + np.mean(np.log(1 - _sigmoid(np.array(FAKE))))
    big = [200.0, -200.0]                       # log σ(l) = −log(1 + e^{−l}), finite for any l
    exp_big = np.mean(-np.logaddexp(0, -np.array(big))) + np.mean(-np.logaddexp(0, np.array(big)))
    return [(f"real_logits={REAL}, fake_logits={FAKE}", exp, lambda: gan_value(T(REAL), T(FAKE))),
            (f"real_logits = fake_logits = {big}", exp_big, lambda: gan_value(T(big), T(big)))]


@probe("gan.discriminator_loss")
def _():
    from genmodels.gan import discriminator_loss
    exp = (F.binary_cross_entropy_with_logits(T(REAL), torch.ones(3, dtype=torch.float64))
           + F.binary_cross_entropy_with_logits(T(FAKE), torch.zeros(2, dtype=torch.float64)))
    return [(f"real_logits={REAL}, fake_logits={FAKE}", exp,
             lambda: discriminator_loss(T(REAL), T(FAKE)))]


@probe("gan.generator_loss")
def _():
    from genmodels.gan import generator_loss
    d = _sigmoid(np.array(FAKE))
    return [(f"fake_logits={FAKE}, saturating=True", np.mean(np.log(1 - d)),
             lambda: generator_loss(T(FAKE), saturating=True)),
            (f"fake_logits={FAKE}, saturating=False", -np.mean(np.log(d)),
             lambda: generator_loss(T(FAKE), saturating=False)),
            ("fake_logits=[-200], saturating=False", 200.0,
             lambda: generator_loss(T([-200.0]), saturating=False))]


# --------------------------------------------------------------------------------- diffusion
BETAS = np.array([0.1, 0.2, 0.3, 0.4])
ALPHA_BAR = np.cumprod(1 - BETAS)
X, NOISE, STEP = np.array([[1.0, -1.0]]), np.array([[0.5, 0.25]]), 2


def _tt(t=STEP):
    return torch.tensor([t])


@probe("ddpm.q_step")
def _():
    from genmodels.diffusion import q_step
    b = BETAS[STEP]
    return [(f"betas={BETAS.tolist()}, t={STEP}, x_prev={X.tolist()}, noise={NOISE.tolist()}",
             np.sqrt(1 - b) * X + np.sqrt(b) * NOISE,
             lambda: q_step(T(X), _tt(), _schedule(BETAS), noise=T(NOISE)))]


@probe("ddpm.q_sample")
def _():
    from genmodels.diffusion import q_sample
    ab = ALPHA_BAR[STEP]
    return [(f"betas={BETAS.tolist()}, t={STEP}, x0={X.tolist()}, noise={NOISE.tolist()}",
             np.sqrt(ab) * X + np.sqrt(1 - ab) * NOISE,
             lambda: q_sample(T(X), _tt(), _schedule(BETAS), noise=T(NOISE)))]


@probe("ddpm.q_posterior")
def _():
    from genmodels.diffusion import q_posterior
    x_t = NOISE
    ab, ab_prev, a, b = ALPHA_BAR[STEP], ALPHA_BAR[STEP - 1], 1 - BETAS[STEP], BETAS[STEP]
    mean = b * np.sqrt(ab_prev) / (1 - ab) * X + np.sqrt(a) * (1 - ab_prev) / (1 - ab) * x_t
    var = b * (1 - ab_prev) / (1 - ab)
    return [(f"betas={BETAS.tolist()}, t={STEP}, x0={X.tolist()}, x_t={x_t.tolist()} → mean",
             mean, lambda: q_posterior(T(X), T(x_t), _tt(), _schedule(BETAS))[0]),
            ("the same → variance", [[var]],
             lambda: q_posterior(T(X), T(x_t), _tt(), _schedule(BETAS))[1])]


def _eps_model(x, t):
    return 0.5 * x + 0.1 * t.to(x.dtype)[:, None]


def _np_eps(x, t):
    return 0.5 * x + 0.1 * t


@probe("ddpm.p_mean_variance")
def _():
    from genmodels.diffusion import p_mean_variance
    ab, ab_prev, a, b = ALPHA_BAR[STEP], ALPHA_BAR[STEP - 1], 1 - BETAS[STEP], BETAS[STEP]
    mean = (X - b / np.sqrt(1 - ab) * _np_eps(X, STEP)) / np.sqrt(a)
    var = b * (1 - ab_prev) / (1 - ab)
    label = f"eps_model(x, t) = 0.5·x + 0.1·t, betas={BETAS.tolist()}, t={STEP}, x_t={X.tolist()}"
    return [(label + " → mean", mean,
             lambda: p_mean_variance(_eps_model, T(X), _tt(), _schedule(BETAS))[0]),
            ("the same → variance", [[var]],
             lambda: p_mean_variance(_eps_model, T(X), _tt(), _schedule(BETAS))[1])]


@probe("ddpm.loss")
def _():
    from genmodels.diffusion import ddpm_loss
    ab = ALPHA_BAR[STEP]
    x_t = np.sqrt(ab) * X + np.sqrt(1 - ab) * NOISE
    exp = np.mean((NOISE - _np_eps(x_t, STEP)) ** 2)
    return [(f"eps_model(x, t) = 0.5·x + 0.1·t, betas={BETAS.tolist()}, t={STEP}, x0={X.tolist()}, "
             f"noise={NOISE.tolist()}", exp,
             lambda: ddpm_loss(_eps_model, T(X), _schedule(BETAS), t=_tt(), noise=T(NOISE)))]


@probe("ddpm.sample")
def _():
    from genmodels.diffusion import ddpm_sample
    b = 0.3                                       # T = 1: one step, which adds no noise
    exp = (X - b / np.sqrt(b) * _np_eps(X, 0)) / np.sqrt(1 - b)
    return [(f"T=1, betas=[{b}], x_T={X.tolist()}, eps_model(x, t) = 0.5·x + 0.1·t", exp,
             lambda: ddpm_sample(_eps_model, X.shape, _schedule([b]), x_T=T(X)))]


def _sde(t, bmin=0.1, bmax=20.0):
    integral = bmin * t + 0.5 * t ** 2 * (bmax - bmin)
    return np.exp(-0.5 * integral), np.sqrt(1 - np.exp(-integral))


@probe("ddpm.sde_marginal")
def _():
    from genmodels.diffusion import vp_sde_marginal
    a, s = _sde(0.3)
    label = f"x0={X.tolist()}, t=[0.3], noise={NOISE.tolist()}, beta_min=0.1, beta_max=20"
    return [(label + " → x_t", a * X + s * NOISE,
             lambda: vp_sde_marginal(T(X), T([0.3]), noise=T(NOISE))[0]),
            ("the same → std", [[s]], lambda: vp_sde_marginal(T(X), T([0.3]), noise=T(NOISE))[1])]


@probe("ddpm.score_matching")
def _():
    from genmodels.diffusion import score_matching_loss
    a, s = _sde(0.3)
    x_t = a * X + s * NOISE
    exp = np.mean((s * (-x_t) + NOISE) ** 2)
    return [(f"score_model(x, t) = −x, x0={X.tolist()}, t=[0.3], noise={NOISE.tolist()}", exp,
             lambda: score_matching_loss(lambda x, t: -x, T(X), t=T([0.3]), noise=T(NOISE)))]


@probe("ddpm.euler_maruyama")
def _():
    from genmodels.diffusion import euler_maruyama_sample
    eps, beta = 0.5, 0.1 + 1.0 * (20.0 - 0.1)      # one step from t = 1: no noise is added
    exp = X + (0.5 * beta * X + beta * (-X)) * (1 - eps)
    return [(f"steps=1, eps=0.5, x_T={X.tolist()}, score_model(x, t) = −x", exp,
             lambda: euler_maruyama_sample(lambda x, t: -x, X.shape, 1, eps=eps, x_T=T(X)))]


# --------------------------------------------------------------------------------- rnn
def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


@probe("rnn.rnn_cell")
def _():
    from genmodels.rnn import rnn_cell
    cell = torch.nn.RNNCell(3, 2).double()
    x, h = _rand(1, 3, seed=1), _rand(1, 2, seed=2)
    with torch.no_grad():
        exp = cell(x, h)
    return [("torch.nn.RNNCell(3, 2) with the same weights, one step",
             exp, lambda: rnn_cell(x, h, cell.weight_ih.detach(), cell.weight_hh.detach(),
                                   (cell.bias_ih + cell.bias_hh).detach()))]


@probe("rnn.rnn_output")
def _():
    from genmodels.rnn import rnn_output
    h, W, b = _rand(1, 2, seed=1), _rand(3, 2, seed=2), _rand(3, seed=3)
    return [("h=randn(1,2), W_ho=randn(3,2), b_o=randn(3)", h.numpy() @ W.numpy().T + b.numpy(),
             lambda: rnn_output(h, W, b))]


@probe("rnn.lstm_cell")
def _():
    from genmodels.rnn import lstm_cell
    H, I = 2, 3
    cell = torch.nn.LSTMCell(I, H).double()
    x, h, c = _rand(1, I, seed=1), _rand(1, H, seed=2), _rand(1, H, seed=3)
    with torch.no_grad():
        h_ref, c_ref = cell(x, (h, c))
    Wi, Wh, b = cell.weight_ih.detach(), cell.weight_hh.detach(), (cell.bias_ih + cell.bias_hh).detach()
    # torch stacks the gates (input, forget, cell, output); ours act on [h, x]
    W = {g: torch.cat([Wh[k * H:(k + 1) * H], Wi[k * H:(k + 1) * H]], 1) for k, g in enumerate("ifCo")}
    B = {g: b[k * H:(k + 1) * H] for k, g in enumerate("ifCo")}
    args = lambda: (x, h, c, W["f"], B["f"], W["i"], B["i"], W["C"], B["C"], W["o"], B["o"])
    return [("torch.nn.LSTMCell(3, 2) with the same weights → h_t", h_ref, lambda: lstm_cell(*args())[0]),
            ("the same → c_t", c_ref, lambda: lstm_cell(*args())[1])]


# --------------------------------------------------------------------------------- transformer
@probe("transformer.positional_encoding")
def _():
    from genmodels.transformer import sinusoidal_positional_encoding
    L, d = 3, 4
    exp = [[(math.sin if j % 2 == 0 else math.cos)(p / 10000 ** ((j - j % 2) / d)) for j in range(d)]
           for p in range(L)]
    return [("seq_len=3, d_model=4", exp,
             lambda: sinusoidal_positional_encoding(L, d, dtype=torch.float64))]


@probe("transformer.attention")
def _():
    from genmodels.transformer import scaled_dot_product_attention
    q, k, v = _rand(1, 2, 3, seed=1), _rand(1, 4, 3, seed=2), _rand(1, 4, 2, seed=3)
    mask = torch.tensor([[True, True, False, True], [True, False, False, False]])
    return [("q [1,2,3], k [1,4,3], v [1,4,2], no mask (vs F.scaled_dot_product_attention)",
             F.scaled_dot_product_attention(q, k, v),
             lambda: scaled_dot_product_attention(q, k, v)[0]),
            ("the same with a boolean mask", F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
             lambda: scaled_dot_product_attention(q, k, v, mask)[0])]


@probe("transformer.multi_head")
def _():
    from genmodels.transformer import multi_head_attention
    d, h = 4, 2
    mha = torch.nn.MultiheadAttention(d, h, bias=False, batch_first=True).double()
    x, y = _rand(1, 2, d, seed=1), _rand(1, 3, d, seed=2)
    with torch.no_grad():
        exp = mha(x, y, y, need_weights=False)[0]
    wq, wk, wv = (w.t().detach() for w in mha.in_proj_weight.chunk(3))
    wo = mha.out_proj.weight.t().detach()
    return [("torch.nn.MultiheadAttention(d=4, heads=2, no bias), same weights, query [1,2,4], "
             "key = value [1,3,4]", exp, lambda: multi_head_attention(x, y, y, wq, wk, wv, wo, h))]


@probe("transformer.ffn")
def _():
    from genmodels.transformer import position_wise_ffn
    x, w1, b1, w2, b2 = (_rand(*s, seed=i) for i, s in enumerate([(2, 3), (3, 4), (4,), (4, 3), (3,)]))
    n = [t.numpy() for t in (x, w1, b1, w2, b2)]
    exp = np.maximum(0, n[0] @ n[1] + n[2]) @ n[3] + n[4]
    return [("x [2,3], w1 [3,4], b1 [4], w2 [4,3], b2 [3] (randn)", exp,
             lambda: position_wise_ffn(x, w1, b1, w2, b2))]


@probe("transformer.next_token")
def _():
    from genmodels.transformer import next_token_distribution
    h, w, b = _rand(2, 3, seed=1), _rand(3, 5, seed=2), _rand(5, seed=3)
    z = h.numpy() @ w.numpy() + b.numpy()
    exp = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    return [("h [2,3], w [3,5], b [5] (randn)", exp, lambda: next_token_distribution(h, w, b))]


@probe("transformer.masked_lm_loss")
def _():
    from genmodels.transformer import masked_lm_loss
    logits, targets = _rand(1, 4, 5, seed=1), torch.tensor([[1, 4, 0, 2]])
    mask = torch.tensor([[True, False, True, False]])
    return [("logits [1,4,5], targets [[1,4,0,2]], mask [[T,F,T,F]], mean",
             F.cross_entropy(logits[mask], targets[mask]),
             lambda: masked_lm_loss(logits, targets, mask)),
            ("the same, reduction='sum'", F.cross_entropy(logits[mask], targets[mask], reduction="sum"),
             lambda: masked_lm_loss(logits, targets, mask, reduction="sum"))]


@probe("transformer.task_loss")
def _():
    from genmodels.transformer import task_loss
    logits, targets = _rand(2, 3, 5, seed=1), torch.tensor([[1, 4, 0], [2, -100, 3]])
    return [("logits [2,3,5], targets [[1,4,0],[2,-100,3]], ignore_index=-100",
             F.cross_entropy(logits.reshape(-1, 5), targets.reshape(-1), ignore_index=-100),
             lambda: task_loss(logits, targets, ignore_index=-100))]


# --------------------------------------------------------------------------------- audio
def _tone(n=512, sr=8000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    return np.sin(2 * np.pi * 440 * t) + 0.3 * rng.standard_normal(n)


@probe("audio.mel_filterbank")
def _():
    import librosa
    from genmodels.audio import mel_filterbank
    return [("sample_rate=8000, n_fft=64, n_mels=6 (vs librosa.filters.mel)",
             librosa.filters.mel(sr=8000, n_fft=64, n_mels=6, dtype=np.float64),
             lambda: mel_filterbank(8000, 64, 6, dtype=torch.float64))]


@probe("audio.mfcc", rtol=1e-6, atol=1e-6)
def _():
    import librosa
    from genmodels.audio import mfcc
    y = _tone()
    return [("a 440 Hz tone + noise, 512 samples at 8 kHz, n_mfcc=4, n_fft=128, hop=64, n_mels=16 "
             "(vs librosa.feature.mfcc)",
             librosa.feature.mfcc(y=y, sr=8000, n_mfcc=4, n_fft=128, hop_length=64, n_mels=16)[:, :4],
             lambda: mfcc(torch.from_numpy(y), 8000, 4, 128, 64, 16)[:, :4])]


@probe("audio.voice_conversion")
def _():
    from genmodels.audio import VoiceConverter
    torch.manual_seed(0)
    model = VoiceConverter(3, hidden=4, layers=1, kernel_size=3).double()
    src = _rand(1, 3, 5, seed=1)
    model.set_statistics(_rand(2, 3, 5, seed=2), _rand(2, 3, 5, seed=3) * 2 + 1)
    with torch.no_grad():
        h = model.encoder((src - model.source_mean) / model.source_std)
        exp = model.decoder(h + model.conversion(h))
    return [("VoiceConverter(3 features, hidden=4), random weights and statistics, source [1,3,5]",
             exp, lambda: model.convert_normalized(src).detach())]


@probe("audio.mu_law", rtol=1e-9, atol=1e-12)
def _():
    import librosa
    from genmodels.audio.measures import mu_law_compress, mu_law_expand
    x = np.array([-1.0, -0.3, 0.0, 0.01, 0.5, 1.0])
    return [(f"x={x.tolist()}, channels=256 → f(x) (vs librosa.mu_compress)",
             librosa.mu_compress(x, mu=255, quantize=False), lambda: mu_law_compress(T(x))),
            ("the same values → f⁻¹(x) (vs librosa.mu_expand)",
             librosa.mu_expand(x, mu=255, quantize=False), lambda: mu_law_expand(T(x)))]


@probe("audio.wavenet")
def _():
    from genmodels.audio.wavenet import causal_conv1d, gated_activation
    x, w, b, dil = _rand(1, 1, 6, seed=1), _rand(1, 1, 2, seed=2), _rand(1, seed=3), 2
    xn, wn = x.numpy()[0, 0], w.numpy()[0, 0]
    exp = [b.item() + sum(wn[j] * (xn[t - (1 - j) * dil] if t - (1 - j) * dil >= 0 else 0.0)
                          for j in range(2)) for t in range(6)]
    z = _rand(1, 4, 3, seed=4)
    zn = z.numpy()
    return [("causal_conv1d: x [1,1,6], kernel 2, dilation 2 (y[t] uses x[t] and x[t−2] only)",
             [[exp]], lambda: causal_conv1d(x, w, b, dil)),
            ("gated_activation: z [1,4,3] → tanh(first half) ⊙ sigmoid(second half)",
             np.tanh(zn[:, :2]) * _sigmoid(zn[:, 2:]), lambda: gated_activation(z))]


@probe("audio.spectral_subtraction", rtol=1e-6, atol=1e-9)
def _():
    import librosa
    from genmodels.audio import spectral_subtraction
    noisy, noise = _tone(512, seed=1), 0.3 * np.random.default_rng(2).standard_normal(256)
    N = np.abs(librosa.stft(noise, n_fft=64, hop_length=16, center=False)).mean(-1, keepdims=True)
    Y = librosa.stft(noisy, n_fft=64, hop_length=16, pad_mode="constant")
    S = np.maximum(np.abs(Y) - N, 0.0) * np.exp(1j * np.angle(Y))
    exp = librosa.istft(S, n_fft=64, hop_length=16, length=512)
    return [("a tone + noise (512 samples), a noise clip (256), n_fft=64, hop=16 "
             "(vs librosa.stft / istft)", exp[:8],
             lambda: spectral_subtraction(torch.from_numpy(noisy), torch.from_numpy(noise), 64, 16)[:8])]


@probe("audio.masking")
def _():
    from genmodels.audio import MaskNet
    torch.manual_seed(0)
    net = MaskNet(n_fft=16, hop_length=4, n_sources=2, hidden=4, layers=1).double()
    x = torch.from_numpy(_tone(64))[None]
    win = torch.hann_window(16, periodic=True, dtype=torch.float64)
    with torch.no_grad():
        spec = torch.stft(x, 16, 4, window=win, center=True, pad_mode="constant", return_complex=True)
        masked = net.masks(spec) * spec[:, None]
        exp = torch.istft(masked.reshape(2, 9, -1), 16, 4, window=win, length=64).reshape(1, 2, 64)
    return [("MaskNet(n_fft=16, hop=4, 2 sources), random weights, a 64-sample tone "
             "(vs torch.stft / torch.istft)", exp[..., :6], lambda: net(x).detach()[..., :6])]


def _np_si_sdr(est, ref):
    est, ref = est - est.mean(), ref - ref.mean()
    target = (est @ ref) / (ref @ ref) * ref
    return 10 * np.log10((target @ target) / ((est - target) @ (est - target)))


@probe("audio.pit", rtol=1e-9, atol=1e-9)
def _():
    from genmodels.audio import permutation_invariant_si_sdr
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 32))
    est = ref[::-1] + 0.3 * rng.standard_normal((2, 32))          # outputs in swapped order
    best = max(np.mean([_np_si_sdr(est[p[i]], ref[i]) for i in range(2)])
               for p in itertools.permutations(range(2)))
    return [("2 references, 2 noisy estimates in swapped order (brute force over permutations)",
             [best], lambda: permutation_invariant_si_sdr(T(est[None].copy()), T(ref[None]))[0])]


@probe("audio.si_sdr", rtol=1e-9, atol=1e-9)
def _():
    from genmodels.audio import si_sdr
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(32)
    est = 2.0 * ref + 0.5 * rng.standard_normal(32) + 1.0
    return [("reference randn(32), estimate 2·reference + 0.5·noise + 1", _np_si_sdr(est, ref),
             lambda: si_sdr(T(est), T(ref)))]


@probe("audio.mcd")
def _():
    from genmodels.audio import mel_cepstral_distortion
    c1, c2 = np.array([[5.0, 1.0], [1.0, 2.0], [0.0, 1.0]]), np.array([[0.0, 0.0], [0.5, 2.0], [1.0, 3.0]])
    d = c1[1:] - c2[1:]
    exp = np.mean(10 / np.log(10) * np.sqrt(2 * (d ** 2).sum(0)))
    return [("c1=[[5,1],[1,2],[0,1]], c2=[[0,0],[.5,2],[1,3]] (3 coefficients × 2 frames)", exp,
             lambda: mel_cepstral_distortion(T(c1), T(c2)))]
