"""Eqs. 2.14–2.21: RNN and LSTM cells and modules against torch.nn.RNN(Cell)/LSTM(Cell).

The references are PyTorch's built-ins with the same weights. torch stacks the LSTM gates
i, f, g, o and keeps input and hidden matrices apart; the tests re-arrange them into the
[h_{t-1}, x_t] layout by hand (not with the code under test) before comparing.
"""

import pytest
import torch
from torch import nn

from genmodels.rnn import LSTM, RNN, lstm_cell, rnn_cell, rnn_output
from conftest import randn64

pytestmark = pytest.mark.rnn

B, T, I, H = 3, 6, 4, 5
TOL = dict(rtol=1e-10, atol=1e-12)


def _torch_gate(W: torch.Tensor, name: str) -> torch.Tensor:
    """Rows of torch's gate ``name`` in its i, f, g, o stacking."""
    k = {"i": 0, "f": 1, "g": 2, "o": 3}[name]
    return W[k * H:(k + 1) * H]


def _lstm_params_from_torch(cell) -> list[torch.Tensor]:
    """(W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o) with W_* = [W_hh_*, W_ih_*] ([H, H+I])."""
    out = []
    for gate in ("f", "i", "g", "o"):
        W = torch.cat([_torch_gate(cell.weight_hh, gate), _torch_gate(cell.weight_ih, gate)], 1)
        b = _torch_gate(cell.bias_ih, gate) + _torch_gate(cell.bias_hh, gate)
        out += [W.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()]
    return out


# --- cells ----------------------------------------------------------------------------------

@pytest.mark.exercise("rnn.rnn_cell")
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_matches_torch_rnncell(f64, gen, nonlinearity):
    ref = nn.RNNCell(I, H, nonlinearity=nonlinearity)
    x = torch.randn(B, I, generator=gen, requires_grad=True)
    h = torch.randn(B, H, generator=gen, requires_grad=True)
    W_ih = ref.weight_ih.detach().clone().requires_grad_()
    W_hh = ref.weight_hh.detach().clone().requires_grad_()
    b_h = (ref.bias_ih + ref.bias_hh).detach().clone().requires_grad_()
    act = torch.tanh if nonlinearity == "tanh" else torch.relu

    ours = rnn_cell(x, h, W_ih, W_hh, b_h, activation=act)
    expected = ref(x, h)
    torch.testing.assert_close(ours, expected, **TOL)

    g = torch.randn(B, H, generator=gen)
    gx, gh, gW_ih, gW_hh, gb = torch.autograd.grad(ours, [x, h, W_ih, W_hh, b_h], g)
    rx, rh, rW_ih, rW_hh, rb = torch.autograd.grad(
        expected, [x, h, ref.weight_ih, ref.weight_hh, ref.bias_ih], g)
    for a, b in [(gx, rx), (gh, rh), (gW_ih, rW_ih), (gW_hh, rW_hh), (gb, rb)]:
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.exercise("rnn.rnn_output")
def test_rnn_output_matches_linear(f64, gen):
    lin = nn.Linear(H, 7)
    h = torch.randn(B, H, generator=gen)
    y = rnn_output(h, lin.weight, lin.bias)
    torch.testing.assert_close(y, lin(h), **TOL)
    # any leading dimensions, e.g. the whole sequence [B, T, H]
    hs = torch.randn(B, T, H, generator=gen)
    torch.testing.assert_close(rnn_output(hs, lin.weight, lin.bias), lin(hs), **TOL)


@pytest.mark.exercise("rnn.lstm_cell")
def test_lstm_cell_matches_torch_lstmcell(f64, gen):
    ref = nn.LSTMCell(I, H)
    params = _lstm_params_from_torch(ref)
    x = torch.randn(B, I, generator=gen, requires_grad=True)
    h = torch.randn(B, H, generator=gen, requires_grad=True)
    c = torch.randn(B, H, generator=gen, requires_grad=True)

    h_t, c_t = lstm_cell(x, h, c, *params)
    h_ref, c_ref = ref(x, (h, c))
    torch.testing.assert_close(h_t, h_ref, **TOL)
    torch.testing.assert_close(c_t, c_ref, **TOL)

    gh_out, gc_out = torch.randn(B, H, generator=gen), torch.randn(B, H, generator=gen)
    ours = torch.autograd.grad((h_t, c_t), [x, h, c, *params], (gh_out, gc_out))
    theirs = torch.autograd.grad((h_ref, c_ref), [x, h, c, ref.weight_ih, ref.weight_hh,
                                                   ref.bias_ih], (gh_out, gc_out))
    for a, b in zip(ours[:3], theirs[:3]):
        torch.testing.assert_close(a, b, **TOL)
    gW_ih, gW_hh, gb = theirs[3:]
    for k, gate in enumerate("figo"):
        gW, gbias = ours[3 + 2 * k], ours[4 + 2 * k]
        torch.testing.assert_close(gW[:, :H], _torch_gate(gW_hh, gate), **TOL)
        torch.testing.assert_close(gW[:, H:], _torch_gate(gW_ih, gate), **TOL)
        torch.testing.assert_close(gbias, _torch_gate(gb, gate), **TOL)


def test_cells_keep_float32(gen):
    x, h, c = (torch.randn(B, n, generator=gen) for n in (I, H, H))
    h_t = rnn_cell(x, h, torch.randn(H, I), torch.randn(H, H), torch.randn(H))
    assert h_t.dtype == torch.float32
    params = [torch.randn(H, H + I) if k % 2 == 0 else torch.randn(H) for k in range(8)]
    h_t, c_t = lstm_cell(x, h, c, *params)
    assert h_t.dtype == c_t.dtype == torch.float32


@pytest.mark.exercise("rnn.lstm_cell")
def test_lstm_gates_limits(f64):
    """Forget gate saturated open and input gate shut: C_t = C_{t-1} (eq. 2.19)."""
    x, h, c = torch.randn(B, I), torch.randn(B, H), torch.randn(B, H)
    Z = torch.zeros(H, H + I)
    big = torch.full((H,), 50.0)
    h_t, c_t = lstm_cell(x, h, c, Z, big, Z, -big, Z, torch.zeros(H), Z, big)
    torch.testing.assert_close(c_t, c, rtol=0, atol=1e-15)
    torch.testing.assert_close(h_t, torch.tanh(c), rtol=0, atol=1e-15)


# --- modules --------------------------------------------------------------------------------

def _compare_grads(pairs):
    for ours, theirs in pairs:
        torch.testing.assert_close(ours, theirs, **TOL)


@pytest.mark.exercise("rnn.rnn_cell")
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True])
def test_rnn_module_matches_torch_rnn(f64, gen, num_layers, with_state):
    ref = nn.RNN(I, H, num_layers=num_layers, batch_first=True)
    ours = RNN.from_torch(ref)
    x = torch.randn(B, T, I, generator=gen, requires_grad=True)
    h0 = torch.randn(num_layers, B, H, generator=gen) if with_state else None

    out, hN = ours(x, None if h0 is None else (h0[0] if num_layers == 1 else h0))
    out_ref, hN_ref = ref(x, h0)
    torch.testing.assert_close(out, out_ref, **TOL)
    torch.testing.assert_close(hN.reshape(num_layers, B, H), hN_ref, **TOL)
    assert hN.shape == ((B, H) if num_layers == 1 else (num_layers, B, H))

    g_out = torch.randn(B, T, H, generator=gen)
    g_h = torch.randn(num_layers, B, H, generator=gen)
    loss = (out * g_out).sum() + (hN.reshape(num_layers, B, H) * g_h).sum()
    loss_ref = (out_ref * g_out).sum() + (hN_ref * g_h).sum()
    mine = [x] + [p for l in range(num_layers) for p in ours.layer_params(l)]
    theirs = [x] + [getattr(ref, f"{n}_l{l}") for l in range(num_layers)
                    for n in ("weight_ih", "weight_hh", "bias_ih")]
    _compare_grads(zip(torch.autograd.grad(loss, mine), torch.autograd.grad(loss_ref, theirs)))


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_module_matches_torch_lstm(f64, gen, num_layers, with_state):
    ref = nn.LSTM(I, H, num_layers=num_layers, batch_first=True)
    ours = LSTM.from_torch(ref)
    x = torch.randn(B, T, I, generator=gen, requires_grad=True)
    if with_state:
        h0, c0 = torch.randn(2, num_layers, B, H, generator=gen)
        state_ref = (h0, c0)
        state = (h0[0], c0[0]) if num_layers == 1 else (h0, c0)
    else:
        state_ref = state = None

    out, (hN, cN) = ours(x, state)
    out_ref, (hN_ref, cN_ref) = ref(x, state_ref)
    torch.testing.assert_close(out, out_ref, **TOL)
    torch.testing.assert_close(hN.reshape(num_layers, B, H), hN_ref, **TOL)
    torch.testing.assert_close(cN.reshape(num_layers, B, H), cN_ref, **TOL)

    g_out = torch.randn(B, T, H, generator=gen)
    g_h, g_c = torch.randn(2, num_layers, B, H, generator=gen)
    loss = ((out * g_out).sum() + (hN.reshape(num_layers, B, H) * g_h).sum()
            + (cN.reshape(num_layers, B, H) * g_c).sum())
    loss_ref = (out_ref * g_out).sum() + (hN_ref * g_h).sum() + (cN_ref * g_c).sum()
    (gx,) = torch.autograd.grad(loss, [x], retain_graph=True)
    (gx_ref,) = torch.autograd.grad(loss_ref, [x], retain_graph=True)
    torch.testing.assert_close(gx, gx_ref, **TOL)
    for l in range(num_layers):
        W, b = ours.layer_params(l)
        gW, gb = torch.autograd.grad(loss, [W, b], retain_graph=True)
        tW_ih, tW_hh, tb = torch.autograd.grad(
            loss_ref, [getattr(ref, f"weight_ih_l{l}"), getattr(ref, f"weight_hh_l{l}"),
                       getattr(ref, f"bias_ih_l{l}")], retain_graph=True)
        for k, gate in enumerate("figo"):  # our stacking f, i, C, o vs torch's i, f, g, o
            rows = slice(k * H, (k + 1) * H)
            torch.testing.assert_close(gW[rows, :H], _torch_gate(tW_hh, gate), **TOL)
            torch.testing.assert_close(gW[rows, H:], _torch_gate(tW_ih, gate), **TOL)
            torch.testing.assert_close(gb[rows], _torch_gate(tb, gate), **TOL)


@pytest.mark.parametrize("cls, cell", [(RNN, "rnn_cell"), (LSTM, "lstm_cell")])
def test_modules_compute_every_step_with_the_spec_cell(f64, gen, cls, cell, monkeypatch):
    """The modules hold no second copy of the equations: every step of every layer is one call
    of rnn_cell / lstm_cell (so a student's cell is the one the model trains with), and their
    outputs are those calls' outputs."""
    import genmodels.rnn.modules as modules
    calls, original = [], getattr(modules, cell)

    def counting(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out[0] if isinstance(out, tuple) else out)
        return out

    monkeypatch.setattr(modules, cell, counting)
    m = cls(I, H, num_layers=2)
    out, _ = m(torch.randn(B, T, I, generator=gen))
    assert len(calls) == 2 * T
    torch.testing.assert_close(out, torch.stack(calls[T:], dim=1), rtol=0, atol=0)


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_state_carries_across_chunks(f64, gen, cls):
    """Running x[:, :k] and then x[:, k:] from the returned state equals running x at once."""
    model = cls(I, H, num_layers=2)
    x = torch.randn(B, T, I, generator=gen)
    out, state = model(x)
    out1, s1 = model(x[:, :2])
    out2, s2 = model(x[:, 2:], s1)
    torch.testing.assert_close(torch.cat([out1, out2], 1), out, **TOL)
    torch.testing.assert_close(s2, state, **TOL)


def test_modules_keep_float32(gen):
    x = torch.randn(B, T, I, generator=gen)
    for m in (RNN(I, H), LSTM(I, H, num_layers=2)):
        out, _ = m(x)
        assert out.dtype == torch.float32 and out.shape == (B, T, H)


# --- errors ---------------------------------------------------------------------------------

def test_cell_value_errors(gen):
    x, h, c = torch.randn(B, I), torch.randn(B, H), torch.randn(B, H)
    W_ih, W_hh, b = torch.randn(H, I), torch.randn(H, H), torch.randn(H)
    with pytest.raises(ValueError, match="W_ih"):
        rnn_cell(x, h, torch.randn(H, I + 1), W_hh, b)
    with pytest.raises(ValueError, match="h_prev"):
        rnn_cell(x, torch.randn(B + 1, H), W_ih, W_hh, b)
    with pytest.raises(ValueError, match="dtype"):
        rnn_cell(x.double(), h, W_ih, W_hh, b)
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="x_t"):
        rnn_cell(bad, h, W_ih, W_hh, b)
    with pytest.raises(ValueError, match="W_ho"):
        rnn_output(h, torch.randn(3, H + 1), torch.randn(3))
    params = [torch.randn(H, H + I) if k % 2 == 0 else torch.randn(H) for k in range(8)]
    params[4] = torch.randn(H, I)  # W_C without the hidden columns
    with pytest.raises(ValueError, match="W_C"):
        lstm_cell(x, h, c, *params)
    with pytest.raises(ValueError, match="c_prev"):
        lstm_cell(x, h, torch.randn(B, H + 1), *params)


def test_module_value_errors(gen):
    m = LSTM(I, H, num_layers=2)
    with pytest.raises(ValueError, match="x"):
        m(torch.randn(B, I))
    with pytest.raises(ValueError, match="input_size"):
        m(torch.randn(B, T, I + 1))
    with pytest.raises(ValueError, match="state"):
        m(torch.randn(B, T, I), (torch.zeros(B, H), torch.zeros(B, H)))  # 2 layers need [2,B,H]
    with pytest.raises(ValueError, match="num_layers"):
        RNN(I, H, num_layers=0)
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(I, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="bidirectional"):
        LSTM.from_torch(nn.LSTM(I, H, batch_first=True, bidirectional=True))
    x = torch.randn(B, T, I)
    x[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="x"):
        RNN(I, H)(x)


# --- every check's message names the argument and the problem ---------------------------------

def _rnn_args(**change):
    args = dict(x_t=torch.zeros(B, I), h_prev=torch.zeros(B, H), W_ih=torch.zeros(H, I),
                W_hh=torch.zeros(H, H), b_h=torch.zeros(H))
    return {**args, **change}


_LSTM_NAMES = ["W_f", "b_f", "W_i", "b_i", "W_C", "b_C", "W_o", "b_o"]


def _lstm_args(**change):
    args = dict(x_t=torch.zeros(B, I), h_prev=torch.zeros(B, H), c_prev=torch.zeros(B, H))
    for name in _LSTM_NAMES:
        args[name] = torch.zeros(H, H + I) if name.startswith("W") else torch.zeros(H)
    return {**args, **change}


_NAN2 = torch.full((H, I), float("nan"))


@pytest.mark.parametrize("change, message", [
    (dict(x_t=torch.zeros(I)), r"^x_t: expected 2 dimensions"),
    (dict(h_prev=torch.zeros(H)), r"^h_prev: expected 2 dimensions"),
    (dict(W_ih=torch.zeros(H * I)), r"^W_ih: expected 2 dimensions"),
    (dict(W_hh=torch.zeros(H)), r"^W_hh: expected 2 dimensions"),
    (dict(b_h=torch.zeros(1, H)), r"^b_h: expected 1 dimensions"),
    (dict(W_hh=torch.zeros(H, H + 1)), rf"^W_hh: expected shape \[{H}, {H}\], got \[{H}, {H + 1}\]$"),
    (dict(W_ih=torch.zeros(H, I + 1)), rf"^W_ih: expected shape \[{H}, {I}\], got \[{H}, {I + 1}\]$"),
    (dict(W_ih=_NAN2), r"^W_ih: contains"),
    (dict(h_prev=torch.zeros(B + 1, H)), rf"^h_prev: expected shape \[{B}, {H}\], got \[{B + 1}, {H}\]$"),
    (dict(b_h=torch.zeros(H + 1)), rf"^b_h: expected shape \[{H}\], got \[{H + 1}\]$"),
    (dict(b_h=torch.zeros(H, dtype=torch.float64)),
     r"^x_t: dtypes must match, got x_t:torch.float32, h_prev:torch.float32, W_ih:torch.float32, "
     r"W_hh:torch.float32, b_h:torch.float64$"),
    (dict(activation="tanh"), r"^activation: expected a callable, got str$"),
])
def test_rnn_cell_messages(change, message):
    with pytest.raises(ValueError, match=message):
        rnn_cell(**_rnn_args(**change))


@pytest.mark.parametrize("args, message", [
    ((torch.tensor(1.0), torch.zeros(2, H), torch.zeros(2)), r"^h_t: expected at least 1 dimensions"),
    ((torch.zeros(B, H), torch.zeros(2 * H), torch.zeros(2)), r"^W_ho: expected 2 dimensions"),
    ((torch.zeros(B, H), torch.zeros(2, H), torch.zeros(1, 2)), r"^b_o: expected 1 dimensions"),
    ((torch.zeros(B, H + 1), torch.zeros(2, H), torch.zeros(2)),
     rf"^h_t: last dimension must be H={H} \(W_ho is \[2, {H}\]\), got shape \[{B}, {H + 1}\]$"),
    ((torch.zeros(B, H), torch.zeros(2, H), torch.zeros(3)), r"^b_o: expected shape \[2\], got \[3\]$"),
    ((torch.zeros(B, H), torch.zeros(2, H), torch.zeros(2, dtype=torch.float64)),
     r"^h_t: dtypes must match, got h_t:torch.float32, W_ho:torch.float32, b_o:torch.float64$"),
])
def test_rnn_output_messages(args, message):
    with pytest.raises(ValueError, match=message):
        rnn_output(*args)


def test_rnn_output_of_a_single_hidden_vector(f64, gen):
    """h_t may be one vector [H]: y = W_ho h + b_o, written out as a sum."""
    h, W, b = torch.randn(H, generator=gen), torch.randn(2, H, generator=gen), torch.randn(2, generator=gen)
    expected = torch.tensor([sum(W[o, j] * h[j] for j in range(H)) + b[o] for o in range(2)])
    torch.testing.assert_close(rnn_output(h, W, b), expected, **TOL)


@pytest.mark.parametrize("change, message", [
    (dict(x_t=torch.zeros(I)), r"^x_t: expected 2 dimensions"),
    (dict(h_prev=torch.zeros(H)), r"^h_prev: expected 2 dimensions"),
    (dict(c_prev=torch.zeros(H)), r"^c_prev: expected 2 dimensions"),
    (dict(h_prev=torch.zeros(B + 1, H)), rf"^h_prev: expected shape \[{B}, {H}\], got \[{B + 1}, {H}\]$"),
    (dict(c_prev=torch.zeros(B, H + 1)), rf"^c_prev: expected shape \[{B}, {H}\], got \[{B}, {H + 1}\]$"),
    *[(dict([(n, torch.full((H, H + I) if n.startswith("W") else (H,), float("nan")))]),
       rf"^{n}: contains") for n in _LSTM_NAMES],
    *[(dict([(n, torch.zeros(H, H + I + 1) if n.startswith("W") else torch.zeros(H + 1))]),
       rf"^{n}: expected shape \[{H}(, {H + I})?\], got") for n in _LSTM_NAMES],
    (dict(b_o=torch.zeros(H, dtype=torch.float64)),
     r"^x_t: dtypes must match, got x_t:torch.float32, h_prev:torch.float32, c_prev:torch.float32, "
     r"W_f:torch.float32, b_f:torch.float32, W_i:torch.float32, b_i:torch.float32, "
     r"W_C:torch.float32, b_C:torch.float32, W_o:torch.float32, b_o:torch.float64$"),
])
def test_lstm_cell_messages(change, message):
    with pytest.raises(ValueError, match=message):
        lstm_cell(**_lstm_args(**change))


# --- modules: defaults, construction from torch, dropout, initialisation, messages ------------

def test_module_defaults_and_from_torch_copies_every_setting(gen):
    for cls in (RNN, LSTM):
        m = cls(I, H)
        assert m.num_layers == 1 and m.dropout == 0.0
    assert RNN(1, 1)(torch.zeros(1, 1, 1))[0].shape == (1, 1, 1)  # the smallest sizes are valid
    ref = nn.RNN(I, H, num_layers=2, nonlinearity="relu", dropout=0.25, batch_first=True).double()
    ours = RNN.from_torch(ref)
    assert (ours.nonlinearity, ours.dropout, ours.num_layers) == ("relu", 0.25, 2)
    assert all(p.dtype == torch.float64 for p in ours.parameters())
    ref_lstm = nn.LSTM(I, H, num_layers=2, dropout=0.25, batch_first=True).double()
    ours_lstm = LSTM.from_torch(ref_lstm)
    assert (ours_lstm.dropout, ours_lstm.num_layers) == (0.25, 2)
    assert all(p.dtype == torch.float64 for p in ours_lstm.parameters())


def test_relu_rnn_and_bias_free_torch_modules(f64, gen):
    x = torch.randn(B, T, I, generator=gen)
    for ref in (nn.RNN(I, H, nonlinearity="relu", batch_first=True),
                nn.RNN(I, H, bias=False, batch_first=True)):
        torch.testing.assert_close(RNN.from_torch(ref)(x)[0], ref(x)[0], **TOL)
    ref = nn.LSTM(I, H, bias=False, batch_first=True)
    torch.testing.assert_close(LSTM.from_torch(ref)(x)[0], ref(x)[0], **TOL)


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_dropout_acts_between_layers_in_training_only(gen, cls):
    x = torch.randn(B, T, I, generator=gen)
    with torch.random.fork_rng():  # the global RNG draws the weights and the dropout masks
        torch.manual_seed(0)
        plain = cls(I, H, num_layers=2)
        dropped = cls(I, H, num_layers=2, dropout=0.5)
        dropped.load_state_dict(plain.state_dict())
        dropped.eval()
        torch.testing.assert_close(dropped(x)[0], plain(x)[0], rtol=0, atol=0)  # eval: no dropout
        dropped.train()
        assert not torch.allclose(dropped(x)[0], plain(x)[0])  # train: layer 0's outputs dropped
        one = cls(I, H, dropout=0.5)  # a single layer: nothing between layers to drop
        one.train()
        torch.testing.assert_close(one(x)[0], one.eval()(x)[0], rtol=0, atol=0)


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_initialisation_is_uniform_within_one_over_sqrt_h(cls):
    Hbig = 64
    with torch.random.fork_rng():
        torch.manual_seed(0)
        w = torch.cat([p.detach().flatten() for p in cls(I, Hbig).parameters()])
    bound = 1.0 / Hbig ** 0.5
    assert float(w.abs().max()) <= bound
    assert float(w.min()) < -0.9 * bound and float(w.max()) > 0.9 * bound


@pytest.mark.parametrize("make, message", [
    (lambda: RNN(0, H), r"^input_size: must be >= 1, got 0$"),
    (lambda: LSTM(I, 0), r"^hidden_size: must be >= 1, got 0$"),
    (lambda: RNN(I, H, num_layers=0), r"^num_layers: must be >= 1, got 0$"),
    (lambda: LSTM(I, H, dropout=1.0), r"^dropout: must lie in \[0.0, 1.0\), got 1.0$"),
    (lambda: RNN(I, H, dropout=1.5), r"^dropout: must lie in \[0.0, 1.0\), got 1.5$"),
    (lambda: RNN(I, H, nonlinearity="sigmoid"), r"^nonlinearity: must be one of"),
    (lambda: RNN(I, H).load_torch_weights(nn.Linear(I, H)),
     r"^module: expected a torch.nn.RNN or LSTM, got Linear$"),
    (lambda: RNN.from_torch(nn.LSTM(I, H)), r"^module: expected torch.nn.RNN, got LSTM$"),
    (lambda: LSTM.from_torch(nn.RNN(I, H)), r"^module: expected torch.nn.LSTM, got RNN$"),
    (lambda: LSTM.from_torch(nn.LSTM(I, H, bidirectional=True)),
     r"^module: bidirectional modules are not supported$"),
    (lambda: LSTM.from_torch(nn.LSTM(I, H, proj_size=2)),
     r"^module: LSTM with proj_size > 0 is not supported$"),
    (lambda: RNN(I, H).load_torch_weights(nn.RNN(I + 1, H)),
     rf"^module: \(input_size, hidden_size, num_layers\) \({I + 1}, {H}, 1\) differ from \({I}, {H}, 1\)$"),
])
def test_module_construction_messages(make, message):
    with pytest.raises(ValueError, match=message):
        make()


_X = torch.zeros(2, 3, I)


@pytest.mark.parametrize("cls, x, state, message", [
    (RNN, torch.zeros(2, I), None, r"^x: expected 3 dimensions"),
    (RNN, torch.zeros(2, 0, I), None, rf"^x: expected at least one time step, got shape \[2, 0, {I}\]$"),
    (LSTM, torch.zeros(2, 3, I, dtype=torch.float64), None,
     r"^x: dtype torch.float64 differs from the parameters' torch.float32$"),
    (RNN, _X, torch.zeros(H), r"^state: expected 2 or 3 dimensions"),
    (RNN, _X, torch.zeros(1, 1, 2, H), r"^state: expected 2 or 3 dimensions"),
    (RNN, _X, torch.zeros(3, H), rf"^state: expected shape \[2, {H}\], got \[3, {H}\]$"),
    (RNN, _X, torch.zeros(1, 3, H), rf"^state: expected shape \[1, 2, {H}\], got \[1, 3, {H}\]$"),
    (RNN, _X, torch.zeros(2, H, dtype=torch.float64),
     r"^state: dtype torch.float64 differs from the input's torch.float32$"),
    (LSTM, _X, torch.zeros(2, H), r"^state: expected None or a pair \(h, c\)$"),
    (LSTM, _X, (torch.zeros(2, H),), r"^state: expected None or a pair \(h, c\)$"),
    (LSTM, _X, (torch.zeros(3, H), torch.zeros(2, H)), r"^state\[0\] \(h\): expected shape"),
    (LSTM, _X, (torch.zeros(2, H), torch.zeros(H)), r"^state\[1\] \(c\): expected 2 or 3 dimensions"),
    (LSTM, _X, (torch.zeros(2, H), torch.zeros(3, H)), r"^state\[1\] \(c\): expected shape"),
])
def test_module_forward_messages(cls, x, state, message):
    with pytest.raises(ValueError, match=message):
        cls(I, H)(x, state)


def test_two_layer_state_needs_a_layer_axis_and_one_step_is_enough():
    with pytest.raises(ValueError, match=rf"^state: with num_layers=2 expected shape \[2, 2, {H}\], got \[2, {H}\]$"):
        RNN(I, H, num_layers=2)(_X, torch.zeros(2, H))
    assert LSTM(I, H)(torch.zeros(2, 1, I))[0].shape == (2, 1, H)


@pytest.mark.parametrize("cls", [RNN, LSTM])
def test_dropout_probability_is_the_given_one(gen, cls):
    """With p = 1e-6 practically nothing is dropped: training output = eval output up to the
    1/(1 − p) rescaling of the kept values."""
    x = torch.randn(B, T, I, generator=gen)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = cls(I, H, num_layers=2, dropout=1e-6)
        torch.testing.assert_close(m.train()(x)[0], m.eval()(x)[0], rtol=1e-5, atol=1e-5)


# --- small cases: one float64 case per exercise, the expected value computed independently;
# `genmodels-exercise check` shows each as expected vs got ----------------------------------
@pytest.mark.exercise("rnn.rnn_cell")
def test_rnn_cell_small_case(small_case):
    cell = nn.RNNCell(3, 2).double()
    x, h = randn64(1, 3, seed=1), randn64(1, 2, seed=2)
    with torch.no_grad():
        exp = cell(x, h)
    small_case(("torch.nn.RNNCell(3, 2) with the same weights, one step", exp,
                lambda: rnn_cell(x, h, cell.weight_ih.detach(), cell.weight_hh.detach(),
                                 (cell.bias_ih + cell.bias_hh).detach())))


@pytest.mark.exercise("rnn.rnn_output")
def test_rnn_output_small_case(small_case):
    h, W, b = randn64(1, 2, seed=1), randn64(3, 2, seed=2), randn64(3, seed=3)
    small_case(("h=randn(1,2), W_ho=randn(3,2), b_o=randn(3)", h.numpy() @ W.numpy().T + b.numpy(),
                lambda: rnn_output(h, W, b)))


@pytest.mark.exercise("rnn.lstm_cell")
def test_lstm_cell_small_case(small_case):
    H, I = 2, 3
    cell = nn.LSTMCell(I, H).double()
    x, h, c = randn64(1, I, seed=1), randn64(1, H, seed=2), randn64(1, H, seed=3)
    with torch.no_grad():
        h_ref, c_ref = cell(x, (h, c))
    Wi, Wh, b = cell.weight_ih.detach(), cell.weight_hh.detach(), (cell.bias_ih + cell.bias_hh).detach()
    # torch stacks the gates (input, forget, cell, output); ours act on [h, x]
    W = {g: torch.cat([Wh[k * H:(k + 1) * H], Wi[k * H:(k + 1) * H]], 1) for k, g in enumerate("ifCo")}
    B = {g: b[k * H:(k + 1) * H] for k, g in enumerate("ifCo")}
    args = (x, h, c, W["f"], B["f"], W["i"], B["i"], W["C"], B["C"], W["o"], B["o"])
    small_case(("torch.nn.LSTMCell(3, 2) with the same weights → h_t", h_ref, lambda: lstm_cell(*args)[0]),
               ("the same → c_t", c_ref, lambda: lstm_cell(*args)[1]))
