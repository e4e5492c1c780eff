#!/usr/bin/env python3
"""PyTorch's losses and gradients for small versions of every gradtape autoencoder.

This is the outside witness of gradtape's verification suite. It builds each
autoencoder of ``gradtape_models`` in PyTorch (same layers, same activations,
same loss, same parameter names), at small sizes, with

- fixed small weights (PyTorch's default ``nn.Linear`` initialisation, seeded),
- a batch of 3 real digits: the first 3 images of the MNIST training set built
  into gradtape (``models/data/mnist-10k``), shrunk to 4x4 pixels (5x5 for the
  zero-digit model) by averaging blocks, exactly as
  ``gradtape_verify::data::downsampled_batch`` does,
- the step's random draws fixed: the dropout mask on the code, the masking
  noise on the input, the VAE's ``eps``,

and writes all of that, with the loss and every parameter's gradient that
PyTorch computes, to ``reference.safetensors`` beside this script, in float64.
The contractive autoencoder's Jacobian penalty is computed the way the
tutorial does it: one ``torch.autograd.grad(..., create_graph=True)`` per
hidden unit.

The Rust test ``verify/tests/pytorch_reference.rs`` (and the ``verify``
report) reads the file, loads the same weights into gradtape's models, and
checks that the models' real training losses, their autodiff gradients and
the hand derivations all agree with PyTorch to 1e-6 relative. Neither the
Rust build nor its tests need Python: the file is committed.

Regenerate (needs PyTorch only; run from any folder):

    python verify/reference/make_reference.py

then run ``cargo test -p gradtape-verify --test pytorch_reference``. The sizes
below must match ``gradtape_verify::cases::small``; they are stored in the
file's metadata and the Rust side refuses a file made for other sizes.
"""

import gzip
import json
import os
import struct
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
MNIST = HERE.parent.parent / "models" / "data" / "mnist-10k" / "train-images-idx3-ubyte.gz"
OUT = HERE / "reference.safetensors"

SEED = 20240611

# Must match gradtape_verify::cases::small.
BATCH = 3
SIDE = 4
ZERO_DIGIT_HIDDEN = 4
DEEP_WIDTHS = [16, 8, 6, 3]
DEEP_LAMBDA = 0.1
REGULARIZED_HIDDEN = 6
REGULARIZED_LATENT = 3
REGULARIZED_DROPOUT = 0.5
REGULARIZED_GAMMA = 0.1
DENOISING_NOISE = 0.25
CONTRACTIVE_HIDDEN = 4
CONTRACTIVE_LAMBDA = 0.5
VAE_HIDDEN = 6
VAE_LATENT = 3

torch.set_default_dtype(torch.float64)


# ---- data ---------------------------------------------------------------------


def real_digits(n):
    """The first n training images as float32 in [0, 1] (byte / 255, like gradtape), [n, 28, 28]."""
    with gzip.open(MNIST, "rb") as f:
        raw = f.read()
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 2051 and rows == 28 and cols == 28 and count >= n, "unexpected IDX header"
    pixels = torch.tensor(list(raw[16 : 16 + n * 784]), dtype=torch.float32)
    return (pixels / 255.0).reshape(n, 28, 28)


def downsampled(n, side):
    """[n, side*side]: means of side x side blocks of 28 // side pixels, centred (float64)."""
    block = 28 // side
    offset = (28 - block * side) // 2
    img = real_digits(n).double()[:, offset : offset + block * side, offset : offset + block * side]
    blocks = img.reshape(n, side, block, side, block)
    return (blocks.sum(dim=(2, 4)) / (block * block)).reshape(n, side * side)


# ---- the models, as in gradtape_models::autoencoders ------------------------------


class ZeroDigit(nn.Module):
    """25-H-25: ReLU code, sigmoid output, MSE."""

    def __init__(self, hidden):
        super().__init__()
        self.encoder = nn.Linear(25, hidden)
        self.decoder = nn.Linear(hidden, 25)

    def loss(self, x, draws):
        y = torch.sigmoid(self.decoder(torch.relu(self.encoder(x))))
        return F.mse_loss(y, x)


class Deep(nn.Module):
    """Linear layers with ReLU between them, a linear code, a Tanh output; MSE + lambda * ||code||."""

    def __init__(self, widths, lam):
        super().__init__()
        enc, dec = [], []
        for i in range(len(widths) - 1):
            enc += [nn.Linear(widths[i], widths[i + 1]), nn.ReLU()]
        for i in range(len(widths) - 1, 0, -1):
            dec += [nn.Linear(widths[i], widths[i - 1]), nn.ReLU()]
        self.encoder = nn.Sequential(*enc[:-1])  # no ReLU on the code
        self.decoder = nn.Sequential(*dec[:-1], nn.Tanh())
        self.lam = lam

    def loss(self, x, draws):
        code = self.encoder(x)
        return F.mse_loss(self.decoder(code), x) + self.lam * torch.norm(code)


class FixedMask(nn.Module):
    """Dropout with a given (already scaled) mask."""

    def __init__(self):
        super().__init__()
        self.mask = None

    def forward(self, x):
        return x * self.mask


class Regularized(nn.Module):
    """d-H-ReLU-L, dropout on the code, L-H-ReLU-d; MSE + gamma * sum of mean(W^2)."""

    def __init__(self, d, hidden, latent, gamma):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(FixedMask(), nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, d))
        self.gamma = gamma

    def loss(self, x, draws):
        noisy = x * draws["noise_mask"] if "noise_mask" in draws else x
        self.decoder[0].mask = draws["dropout_mask"]
        out = self.decoder(self.encoder(noisy))
        weights = [self.encoder[0].weight, self.encoder[2].weight, self.decoder[1].weight, self.decoder[3].weight]
        return F.mse_loss(out, x) + self.gamma * sum(w.pow(2).mean() for w in weights)


class Contractive(nn.Module):
    """Sigmoid encoder and decoder; MSE + lambda/n * sum_n ||dh_n/dx_n||_F^2, by double backward."""

    def __init__(self, d, hidden, lam):
        super().__init__()
        self.encoder = nn.Linear(d, hidden)
        self.decoder = nn.Linear(hidden, d)
        self.lam = lam

    def loss(self, x, draws):
        x = x.clone().requires_grad_(True)
        h = torch.sigmoid(self.encoder(x))
        y = torch.sigmoid(self.decoder(h))
        penalty = 0.0
        for j in range(h.shape[1]):
            (row,) = torch.autograd.grad(h[:, j].sum(), x, create_graph=True)
            penalty = penalty + row.pow(2).sum()
        # The closed form must agree: sum_n sum_j (h(1-h))^2 sum_i W_ji^2.
        closed = ((h * (1 - h)).pow(2) * self.encoder.weight.pow(2).sum(dim=1)).sum()
        assert torch.allclose(penalty, closed, rtol=1e-12, atol=0), (penalty, closed)
        return F.mse_loss(y, x) + self.lam * penalty / x.shape[0]


class VAE(nn.Module):
    """d-H-ReLU to (mu, logvar), z = mu + exp(logvar/2) eps, K-H-ReLU-d-sigmoid; (BCE sum + KL) / n."""

    def __init__(self, d, hidden, latent):
        super().__init__()
        self.encoder = nn.ModuleDict(
            {"hidden": nn.Linear(d, hidden), "mu": nn.Linear(hidden, latent), "logvar": nn.Linear(hidden, latent)}
        )
        self.decoder = nn.ModuleDict({"hidden": nn.Linear(latent, hidden), "out": nn.Linear(hidden, d)})

    def loss(self, x, draws):
        a = torch.relu(self.encoder["hidden"](x))
        mu, logvar = self.encoder["mu"](a), self.encoder["logvar"](a)
        z = mu + torch.exp(0.5 * logvar) * draws["eps"]
        p = torch.sigmoid(self.decoder["out"](torch.relu(self.decoder["hidden"](z))))
        n = x.shape[0]
        bce = F.binary_cross_entropy(p, x, reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return bce / n + kl / n


# ---- writing the file -----------------------------------------------------------------


def write_safetensors(path, tensors, metadata):
    """A float64 safetensors file (the format is an 8-byte header length, a JSON header, the raw bytes)."""
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float64).contiguous().cpu()
        data = struct.pack(f"<{t.numel()}d", *t.flatten().tolist())
        header[name] = {"dtype": "F64", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    head += b" " * (-len(head) % 8)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))
    os.replace(tmp, path)


def main():
    torch.manual_seed(SEED)
    x16 = downsampled(BATCH, SIDE)
    x25 = downsampled(BATCH, 5)
    d = SIDE * SIDE

    def bernoulli(shape, p_one):
        return torch.bernoulli(torch.full(shape, p_one))

    keep = 1.0 - REGULARIZED_DROPOUT
    cases = {
        "zero-digit": (ZeroDigit(ZERO_DIGIT_HIDDEN), x25, {}),
        "deep": (Deep(DEEP_WIDTHS, DEEP_LAMBDA), x16, {}),
        "regularized": (
            Regularized(d, REGULARIZED_HIDDEN, REGULARIZED_LATENT, REGULARIZED_GAMMA),
            x16,
            {"dropout_mask": bernoulli((BATCH, REGULARIZED_LATENT), keep) / keep},
        ),
        "denoising": (
            Regularized(d, REGULARIZED_HIDDEN, REGULARIZED_LATENT, REGULARIZED_GAMMA),
            x16,
            {
                "noise_mask": bernoulli((BATCH, d), 1.0 - DENOISING_NOISE),
                "dropout_mask": bernoulli((BATCH, REGULARIZED_LATENT), keep) / keep,
            },
        ),
        "contractive": (Contractive(d, CONTRACTIVE_HIDDEN, CONTRACTIVE_LAMBDA), x16, {}),
        "vae": (VAE(d, VAE_HIDDEN, VAE_LATENT), x16, {"eps": torch.randn(BATCH, VAE_LATENT)}),
    }

    tensors = {}
    for name, (model, x, draws) in cases.items():
        model = model.double()
        params = dict(model.named_parameters())
        loss = model.loss(x, draws)
        grads = torch.autograd.grad(loss, list(params.values()))
        tensors[f"{name}/x"] = x
        tensors[f"{name}/loss"] = loss
        for key, value in draws.items():
            tensors[f"{name}/{key}"] = value
        for (pname, p), g in zip(params.items(), grads):
            tensors[f"{name}/param/{pname}"] = p
            tensors[f"{name}/grad/{pname}"] = g
        print(f"{name:12} loss {loss.item():.12f}  parameters: {', '.join(params)}")

    metadata = {
        "generator": "verify/reference/make_reference.py",
        "torch": torch.__version__,
        "seed": str(SEED),
        "batch": str(BATCH),
        "side": str(SIDE),
        "zero-digit.hidden": str(ZERO_DIGIT_HIDDEN),
        "deep.widths": ",".join(map(str, DEEP_WIDTHS)),
        "deep.lambda": repr(DEEP_LAMBDA),
        "regularized.hidden": str(REGULARIZED_HIDDEN),
        "regularized.latent": str(REGULARIZED_LATENT),
        "regularized.dropout": repr(REGULARIZED_DROPOUT),
        "regularized.gamma": repr(REGULARIZED_GAMMA),
        "denoising.noise": repr(DENOISING_NOISE),
        "contractive.hidden": str(CONTRACTIVE_HIDDEN),
        "contractive.lambda": repr(CONTRACTIVE_LAMBDA),
        "vae.hidden": str(VAE_HIDDEN),
        "vae.latent": str(VAE_LATENT),
    }
    write_safetensors(OUT, tensors, metadata)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
