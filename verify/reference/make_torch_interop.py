#!/usr/bin/env python3
"""PyTorch weights in, and torch.func's Hessian-vector products, for gradtape's tests.

Writes, beside this script:

- ``torch_weights/<model>.safetensors`` for the six models (zero-digit, deep,
  regularized, denoising, contractive, vae) at the small sizes of
  ``make_reference.py``: the ``nn.Module`` of ``torch_models.py``, PyTorch's
  default initialisation (seeded), saved exactly as a user would,
  ``safetensors.torch.save_file(model.state_dict(), path)`` (float32);
- ``torch_interop.safetensors`` (float64), per model: the batch ``x`` (3 real
  digits, shrunk), the fixed draws (dropout mask, noise mask, ``eps``),
  PyTorch's training ``loss`` and its evaluation-mode ``code`` and
  ``reconstruction``, all computed in float64 from the saved float32
  weights; for the zero-digit model also the reconstruction of its 5x5
  digit (``digit_reconstruction``, what ``gradtape reconstruct --weights``
  shows); and for the deep, contractive and VAE models a tangent ``v/<name>``
  per parameter and the loss's Hessian-vector product ``hvp/<name>``
  computed by ``torch.func.jvp(torch.func.grad(loss), (params,), (v,))``
  (forward over reverse). The contractive loss's penalty is itself a
  gradient (of the code with respect to the input, by ``torch.func.vjp``),
  so its HVP is a third derivative.

The Rust tests (``verify/tests/suite/pytorch_interop.rs``) build gradtape's
models from the weight files by name and check the outputs and loss to 1e-6
and ``gradtape::functional::hvp`` to 1e-10, without Python.

    python verify/reference/make_torch_interop.py       # from any folder
"""

import copy
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
import make_reference as ref  # noqa: E402  (sizes, data; sets float64 as the default dtype)
from torch_models import VAE, Contractive, Deep, Regularized, ZeroDigit  # noqa: E402

WEIGHTS = HERE / "torch_weights"
OUT = HERE / "torch_interop.safetensors"
SEED = 20261129
ZERO_DIGIT = [0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0]


def mse(a, b):
    return (a - b).pow(2).mean()


def clamped_log(p):
    return torch.clamp(torch.log(p), min=-100.0)


def contractive_penalty(model, x):
    """sum_n ||dh_n/dx_n||_F^2, one vjp per hidden unit (torch.func, so that it nests under grad and jvp)."""
    h, pullback = torch.func.vjp(model.encode, x)
    total = 0.0
    for j in range(h.shape[1]):
        seed = torch.zeros_like(h)
        seed[:, j] = 1.0
        (row,) = pullback(seed)
        total = total + row.pow(2).sum()
    return total


def loss(kind, model, x, draws):
    """gradtape's training loss for ``kind`` with the step's draws fixed."""
    n = x.shape[0]
    if kind == "zero-digit":
        return mse(model(x), x)
    if kind == "deep":
        code = model.encode(x)
        return mse(model.decode(code), x) + ref.DEEP_LAMBDA * code.pow(2).sum().sqrt()
    if kind in ("regularized", "denoising"):
        inp = x * draws["noise_mask"] if "noise_mask" in draws else x
        code = model.encoder(inp) * draws["dropout_mask"]
        out = model.decoder[1:](code)  # decoder.0 is the dropout, replaced by the fixed mask
        weights = [model.encoder[0].weight, model.encoder[2].weight, model.decoder[1].weight, model.decoder[3].weight]
        return mse(out, x) + ref.REGULARIZED_GAMMA * sum(w.pow(2).mean() for w in weights)
    if kind == "contractive":
        penalty = contractive_penalty(model, x)
        return mse(model(x), x) + ref.CONTRACTIVE_LAMBDA * penalty / n
    if kind == "vae":
        mu, logvar = model.posterior(x)
        p = model.decode(mu + torch.exp(0.5 * logvar) * draws["eps"])
        bce = -(x * clamped_log(p) + (1 - x) * clamped_log(1 - p)).sum()
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (bce + kl) / n
    raise ValueError(kind)


class Loss(torch.nn.Module):
    """The loss as a module, for ``torch.func.functional_call``."""

    def __init__(self, kind, model):
        super().__init__()
        self.kind, self.model = kind, model

    def forward(self, x, draws):
        return loss(self.kind, self.model, x, draws)


def main():
    torch.manual_seed(SEED)
    d = ref.SIDE * ref.SIDE
    x16 = ref.downsampled(ref.BATCH, ref.SIDE)
    x25 = ref.downsampled(ref.BATCH, 5)

    def bernoulli(shape, p_one):
        return torch.bernoulli(torch.full(shape, p_one))

    keep = 1.0 - ref.REGULARIZED_DROPOUT
    reg = lambda: Regularized(d, ref.REGULARIZED_HIDDEN, ref.REGULARIZED_LATENT, ref.REGULARIZED_DROPOUT)  # noqa: E731
    cases = {
        "zero-digit": (ZeroDigit(ref.ZERO_DIGIT_HIDDEN), x25, {}),
        "deep": (Deep(ref.DEEP_WIDTHS), x16, {}),
        "regularized": (reg(), x16, {"dropout_mask": bernoulli((ref.BATCH, ref.REGULARIZED_LATENT), keep) / keep}),
        "denoising": (
            reg(),
            x16,
            {
                "noise_mask": bernoulli((ref.BATCH, d), 1.0 - ref.DENOISING_NOISE),
                "dropout_mask": bernoulli((ref.BATCH, ref.REGULARIZED_LATENT), keep) / keep,
            },
        ),
        "contractive": (Contractive(d, ref.CONTRACTIVE_HIDDEN), x16, {}),
        "vae": (VAE(d, ref.VAE_HIDDEN, ref.VAE_LATENT), x16, {"eps": torch.randn(ref.BATCH, ref.VAE_LATENT)}),
    }

    WEIGHTS.mkdir(exist_ok=True)
    tensors = {}
    for kind, (model, x, draws) in cases.items():
        # Weights out of PyTorch as a user saves them: float32, state_dict names.
        model = model.float()
        path = WEIGHTS / f"{kind}.safetensors"
        save_file(model.state_dict(), str(path))

        # Everything else in float64, from those float32 weights.
        m = copy.deepcopy(model).double().eval()
        tensors[f"{kind}/x"] = x
        for key, value in draws.items():
            tensors[f"{kind}/{key}"] = value
        with torch.no_grad():
            tensors[f"{kind}/code"] = m.encode(x)
            tensors[f"{kind}/reconstruction"] = m(x)
        tensors[f"{kind}/loss"] = loss(kind, m, x, draws).detach()
        if kind == "contractive":
            # The penalty by vjp must agree with its closed form sum_n sum_j (h(1-h))^2 sum_i W_ji^2.
            h = m.encode(x)
            closed = ((h * (1 - h)).pow(2) * m.encoder.weight.pow(2).sum(dim=1)).sum()
            penalty = contractive_penalty(m, x)
            assert torch.allclose(penalty, closed, rtol=1e-12, atol=0), (penalty, closed)
        if kind == "zero-digit":
            digit = torch.tensor([ZERO_DIGIT], dtype=torch.float64)
            with torch.no_grad():
                tensors[f"{kind}/digit_reconstruction"] = m(digit)

        if kind in ("deep", "contractive", "vae"):
            params = {name: p.detach() for name, p in m.named_parameters()}
            tangents = {name: torch.randn_like(p) for name, p in params.items()}
            wrapped = Loss(kind, m)

            def f(params):
                return torch.func.functional_call(wrapped, {f"model.{k}": v for k, v in params.items()}, (x, draws))

            _, hv = torch.func.jvp(torch.func.grad(f), (params,), (tangents,))
            # The same product by reverse over reverse (torch.autograd), as a check.
            ps = [p.clone().requires_grad_(True) for p in params.values()]
            g = torch.autograd.grad(f(dict(zip(params, ps))), ps, create_graph=True)
            dot = sum((gi * tangents[name]).sum() for gi, name in zip(g, params))
            hv2 = torch.autograd.grad(dot, ps)
            for (name, a), b in zip(hv.items(), hv2):
                assert torch.allclose(a, b, rtol=1e-10, atol=1e-13), (kind, name)
                tensors[f"{kind}/v/{name}"] = tangents[name]
                tensors[f"{kind}/hvp/{name}"] = a
        print(f"{kind:12} loss {tensors[f'{kind}/loss'].item():.12f}  {path.name}: {', '.join(model.state_dict())}")

    metadata = {
        "generator": "verify/reference/make_torch_interop.py",
        "torch": torch.__version__,
        "seed": str(SEED),
        "hvp": "torch.func.jvp(torch.func.grad(loss), (params,), (v,))",
    }
    ref.write_safetensors(OUT, tensors, metadata)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) and {len(cases)} files in {WEIGHTS}")


if __name__ == "__main__":
    main()
