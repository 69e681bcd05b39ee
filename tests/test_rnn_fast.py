"""The fast LSTM (hand-written BPTT) and the character LSTM language model, against torch.nn.LSTM,
the step-by-step lstm_cell path and finite differences, in float64."""

import pytest
import torch

from genmodels.rnn import LSTM
from genmodels.rnn.fast import FastLSTM, LSTMLayerFunction
from genmodels.charlm.lstm import CharLSTM

pytestmark = pytest.mark.rnn


@pytest.mark.parametrize("layers, with_state", [(1, False), (1, True), (2, True)])
def test_fast_lstm_equals_torch_lstm_values_and_gradients(f64, gen, layers, with_state):
    ref = torch.nn.LSTM(5, 7, num_layers=layers, batch_first=True)
    ours = FastLSTM.from_torch(ref)
    x = torch.randn(3, 6, 5, generator=gen, requires_grad=True)
    state = None
    if with_state:
        shape = (layers, 3, 7) if layers > 1 else (3, 7)
        state = tuple(torch.randn(*shape, generator=gen, requires_grad=True) for _ in range(2))
    ref_state = None if state is None else tuple(s.reshape(layers, 3, 7) for s in state)
    o1, (h1, c1) = ref(x, ref_state)
    o2, (h2, c2) = ours(x, state)
    torch.testing.assert_close(o2, o1, atol=1e-12, rtol=0)
    torch.testing.assert_close(h2.reshape(h1.shape), h1, atol=1e-12, rtol=0)
    torch.testing.assert_close(c2.reshape(c1.shape), c1, atol=1e-12, rtol=0)
    w = torch.randn(o1.shape, generator=gen)
    inputs = [x] + ([] if state is None else list(state))
    # a loss that reaches every output: outputs, final h and final c
    g1 = torch.autograd.grad((o1 * w).sum() + 0.3 * h1.sum() + 0.7 * c1.sum(),
                             inputs + list(ref.parameters()))
    g2 = torch.autograd.grad((o2 * w).sum() + 0.3 * h2.sum() + 0.7 * c2.sum(),
                             inputs + list(ours.parameters()))
    for a, b in zip(g1[:len(inputs)], g2[:len(inputs)]):
        torch.testing.assert_close(b, a, atol=1e-12, rtol=0)
    # parameter gradients: copy torch's into our layout through a module built from them
    grads_as_torch = torch.nn.LSTM(5, 7, num_layers=layers, batch_first=True).double()
    with torch.no_grad():
        for p, g in zip(grads_as_torch.parameters(), g1[len(inputs):]):
            p.copy_(g)
    expected = FastLSTM.from_torch(grads_as_torch)
    for (name, e), g in zip(expected.named_parameters(), g2[len(inputs):]):
        if name.startswith("bias"):   # ours holds bias_ih + bias_hh, whose gradient is counted twice there
            e = e / 2
        torch.testing.assert_close(g, e, atol=1e-12, rtol=0, msg=name)


def test_fast_lstm_equals_the_lstm_cell_path(f64, gen):
    slow = LSTM(4, 6, num_layers=2)
    fast = FastLSTM(4, 6, num_layers=2)
    fast.load_state_dict(slow.state_dict())
    x = torch.randn(2, 5, 4, generator=gen, requires_grad=True)
    o1, _ = slow(x)
    o2, _ = fast(x)
    torch.testing.assert_close(o2, o1, atol=1e-12, rtol=0)
    g1 = torch.autograd.grad(o1.square().sum(), [x, *slow.parameters()])
    g2 = torch.autograd.grad(o2.square().sum(), [x, *fast.parameters()])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(b, a, atol=1e-12, rtol=0)


def test_bptt_function_passes_gradcheck(f64, gen):
    B, T, H = 2, 4, 3
    args = (torch.randn(B, T, 4 * H, generator=gen), torch.randn(B, H, generator=gen),
            torch.randn(B, H, generator=gen), torch.randn(4 * H, H, generator=gen))
    args = tuple(a.requires_grad_() for a in args)
    assert torch.autograd.gradcheck(LSTMLayerFunction.apply, args)


def test_char_lstm_impls_agree_and_are_causal(f64, gen):
    torch.manual_seed(0)
    models = {impl: CharLSTM(11, 6, 8, num_layers=2, impl=impl) for impl in ("bptt", "cells")}
    for m in models.values():
        m.load_state_dict(models["bptt"].state_dict())
    idx = torch.randint(11, (3, 9), generator=gen)
    logits = {k: m(idx, idx)[0] for k, m in models.items()}
    losses = {k: m(idx, idx)[1] for k, m in models.items()}
    torch.testing.assert_close(logits["cells"], logits["bptt"], atol=1e-12, rtol=0)
    # the loss is the mean −log softmax at the targets, computed here by hand
    ref = -torch.log_softmax(logits["bptt"], -1).gather(-1, idx[..., None]).mean()
    torch.testing.assert_close(losses["bptt"], ref)
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 11                 # a later character changes...
    after = models["bptt"](changed)[0]
    torch.testing.assert_close(after[:, :5], logits["bptt"][:, :5], atol=0, rtol=0)  # ...not before
    assert not torch.allclose(after[:, 5:], logits["bptt"][:, 5:])


def test_char_lstm_generate_carries_the_state(gen):
    """Sampling step by step with the carried (h, c) equals re-reading the whole prefix."""
    torch.manual_seed(0)
    m = CharLSTM(7, 4, 8).eval()
    prompt = torch.randint(7, (2, 3), generator=gen)
    out = m.generate(prompt, 6, temperature=0.9, top_k=4,
                     generator=torch.Generator().manual_seed(5))
    assert out.shape == (2, 9) and torch.equal(out[:, :3], prompt)
    again = m.generate(prompt, 6, temperature=0.9, top_k=4,
                       generator=torch.Generator().manual_seed(5))
    assert torch.equal(out, again)
    # the last step's distribution from a full re-read puts mass on the sampled token
    full = torch.softmax(m(out[:, :-1])[0][:, -1] / 0.9, -1)
    assert bool((full.gather(1, out[:, -1:]) > 0).all())
    with pytest.raises(ValueError, match="temperature"):
        m.generate(prompt, 2, temperature=0.0)
