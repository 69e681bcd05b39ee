"""Eq. 2.34: WaveNet — causality, receptive field, conditioning and fast generation.

Convention under test: ``forward(x)[:, :, t]`` are the logits of sample t+1 given x_0 … x_t.
"""

import pytest
import torch
import torch.nn.functional as F

from genmodels.audio import WaveNet

pytestmark = pytest.mark.audio

CONFIGS = [  # (kernel_size, dilations, cond_channels, upsample)
    (2, (1, 2, 4, 8), 0, "repeat"),
    (2, (1, 2, 4, 1, 2, 4), 3, "repeat"),
    (3, (1, 3, 9), 3, "transposed"),
]


def _model(kernel_size, dilations, cond_channels, upsample, hop=4, seed=0):
    torch.manual_seed(seed)
    return WaveNet(quantization_channels=256, residual_channels=8, dilation_channels=8,
                   skip_channels=16, kernel_size=kernel_size, dilations=dilations,
                   cond_channels=cond_channels, hop_length=hop, upsample=upsample).double()


def _inputs(model, batch, n, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (batch, n), generator=g)
    cond = None
    if model.cond_channels:
        frames = -(-n // model.hop_length)
        cond = torch.randn(batch, model.cond_channels, frames, generator=g, dtype=torch.float64)
    return x, cond


def test_receptive_field_attribute():
    assert _model(2, (1, 2, 4, 8), 0, "repeat").receptive_field == 16
    assert _model(3, (1, 3, 9), 0, "repeat").receptive_field == 27
    assert WaveNet().receptive_field == 2 * (2 ** 10 - 1) + 1     # 2 stacks of 1 … 512


@pytest.mark.parametrize("config", CONFIGS)
def test_causality(config):
    model = _model(*config)
    x, cond = _inputs(model, 2, 48)
    base = model(x, cond)
    assert base.shape == (2, 256, 48)
    for t0 in (0, 17, 47):
        x2 = x.clone()
        x2[:, t0] = (x2[:, t0] + 100) % 256
        out = model(x2, cond)
        assert torch.equal(out[:, :, :t0], base[:, :, :t0])        # the past never sees x_t0
        assert not torch.allclose(out[:, :, t0], base[:, :, t0])   # position t0 (predicts t0+1) does


@pytest.mark.parametrize("config", CONFIGS)
def test_receptive_field_by_gradient_probe(config):
    model = _model(*config)
    r = model.receptive_field
    n = r + 12
    x, cond = _inputs(model, 1, n)
    onehot = F.one_hot(x, 256).transpose(1, 2).double().requires_grad_(True)   # [1, 256, n]
    logits = model(onehot, cond)
    torch.testing.assert_close(logits, model(x, cond))        # one-hot and level inputs agree
    for t in (n - 1, n - 7, 3):
        w = torch.randn(256, dtype=torch.float64, generator=torch.Generator().manual_seed(t))
        (grad,) = torch.autograd.grad(logits[0, :, t] @ w, onehot, retain_graph=True)
        touched = (grad[0].abs().sum(dim=0) > 0).nonzero().flatten().tolist()
        assert touched == list(range(max(0, t - r + 1), t + 1))


def test_conditioning_is_causal_in_samples():
    model = _model(2, (1, 2, 4), 3, "repeat", hop=5)
    x, cond = _inputs(model, 1, 40)
    base = model(x, cond)
    cond2 = cond.clone()
    cond2[:, :, 3] += 1.0                                     # frame 3 = samples 15 … 19
    out = model(x, cond2)
    assert torch.equal(out[:, :, :15], base[:, :, :15])
    assert not torch.allclose(out[:, :, 15], base[:, :, 15])


@pytest.mark.parametrize("config", CONFIGS)
def test_fast_generation_equals_teacher_forced_forward(config):
    model = _model(*config)
    n = 2 * model.receptive_field + 5                          # the queues wrap around
    _, cond = _inputs(model, 2, n)
    gen = torch.Generator().manual_seed(7)
    levels, logits = model.generate(cond, n, generator=gen, batch_size=2, return_logits=True)
    assert levels.shape == (2, n) and levels.dtype == torch.long and logits.shape == (2, 256, n)
    seq = torch.cat([torch.full((2, 1), model.silence_level), levels[:, :-1]], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(seq, cond), logits, rtol=0, atol=1e-10)


def test_generation_seeded_and_greedy():
    model = _model(2, (1, 2, 4, 8), 0, "repeat")
    a = model.generate(None, 30, generator=torch.Generator().manual_seed(3), batch_size=2)
    b = model.generate(None, 30, generator=torch.Generator().manual_seed(3), batch_size=2)
    assert torch.equal(a, b)
    greedy, logits = model.generate(None, 30, temperature=0.0, return_logits=True)
    assert torch.equal(greedy, logits.argmax(dim=1))


def test_loss_is_next_sample_cross_entropy_and_trains():
    model = _model(2, (1, 2, 4), 0, "repeat")
    x = torch.tensor([[10, 200, 37, 90] * 8])                 # a deterministic period-4 pattern
    logits = model(x)
    by_hand = -torch.log_softmax(logits[0, :, :-1], dim=0)[x[0, 1:], torch.arange(31)].mean()
    torch.testing.assert_close(model.loss(x), by_hand)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.loss(x).item()
    for _ in range(100):
        opt.zero_grad()
        loss = model.loss(x)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first                          # ln 256 ≈ 5.5 → near 0


def test_rejects_bad_input():
    model = _model(2, (1, 2), 3, "repeat")
    x, cond = _inputs(model, 2, 20)
    with pytest.raises(ValueError, match="x"):                # stereo waveform / wrong channels
        model(torch.randn(2, 2, 20, dtype=torch.float64), cond)
    with pytest.raises(ValueError, match="x"):                # multi-channel levels
        model(torch.randint(0, 256, (2, 2, 20)), cond)
    with pytest.raises(ValueError, match="x"):                # empty audio
        model(x[:, :0], cond)
    with pytest.raises(ValueError, match="x"):
        model(torch.full((2, 20), 256), cond)                 # level out of range
    with pytest.raises(ValueError, match="x"):
        model(torch.full((2, 256, 20), float("nan"), dtype=torch.float64), cond)
    with pytest.raises(ValueError, match="cond"):
        model(x, None)
    with pytest.raises(ValueError, match="cond"):
        model(x, cond[:, :, :2])                              # 2 frames × hop 4 < 20 samples
    with pytest.raises(ValueError, match="cond"):
        model(x, cond.float())
    with pytest.raises(ValueError, match="cond"):
        _model(2, (1, 2), 0, "repeat")(x, cond)               # unconditional model
    with pytest.raises(ValueError, match="temperature"):
        model.generate(cond, 5, temperature=-1.0)
    with pytest.raises(ValueError, match="x"):
        model.loss(F.one_hot(x, 256).transpose(1, 2).double(), cond)   # loss needs levels
    with pytest.raises(ValueError, match="kernel_size"):
        WaveNet(kernel_size=1)
