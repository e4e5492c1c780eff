"""gradtape's six autoencoders as PyTorch modules, with gradtape's parameter names.

Each class's ``state_dict`` has exactly the names and shapes of the matching
gradtape model (``gradtape_models::autoencoders``), so

- a gradtape checkpoint loads with ``load_state_dict(..., strict=True)``
  (``torch_load_checkpoint.py``), and
- ``safetensors.torch.save_file(model.state_dict(), path)`` writes a file that
  ``gradtape train MODEL --init-from path`` and
  ``gradtape reconstruct --weights path --model MODEL`` read
  (``make_torch_interop.py``).

Every module has ``encode`` (evaluation mode: no dropout, the VAE's mean),
``decode`` and ``forward`` (the reconstruction). ``Regularized`` is also the
denoising autoencoder (the masking noise is applied to the training input,
outside the module). ``from_state_dict`` reads the sizes off the tensors'
shapes, like ``ModelSpec::sized_from`` does in Rust.
"""

import torch
import torch.nn as nn


class ZeroDigit(nn.Module):
    """25-H-25: ReLU code, sigmoid output. State dict: encoder.{weight,bias}, decoder.{weight,bias}."""

    def __init__(self, hidden=10):
        super().__init__()
        self.encoder = nn.Linear(25, hidden)
        self.decoder = nn.Linear(hidden, 25)

    def encode(self, x):
        return torch.relu(self.encoder(x))

    def decode(self, z):
        return torch.sigmoid(self.decoder(z))

    def forward(self, x):
        return self.decode(self.encode(x))


class Deep(nn.Module):
    """Linear layers with ReLU between them, a linear code, a Tanh output.

    ``encoder`` and ``decoder`` are ``nn.Sequential``s whose linear layers sit
    at the even indices (encoder.0, encoder.2, ...; decoder.0, decoder.2, ...).
    """

    def __init__(self, widths=(784, 128, 64, 12)):
        super().__init__()
        enc, dec = [], []
        for i in range(len(widths) - 1):
            enc += [nn.Linear(widths[i], widths[i + 1]), nn.ReLU()]
        for i in range(len(widths) - 1, 0, -1):
            dec += [nn.Linear(widths[i], widths[i - 1]), nn.ReLU()]
        self.encoder = nn.Sequential(*enc[:-1])  # no ReLU on the code
        self.decoder = nn.Sequential(*dec[:-1], nn.Tanh())

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


class Regularized(nn.Module):
    """d-H-ReLU-L encoder; Dropout(p) on the code, then L-H-ReLU-d decoder (linear output).

    State dict: encoder.0, encoder.2, decoder.1, decoder.3 (decoder.0 is the dropout).
    """

    def __init__(self, input=784, hidden=64, latent=2, dropout=0.8):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(input, hidden), nn.ReLU(), nn.Linear(hidden, latent))
        self.decoder = nn.Sequential(nn.Dropout(dropout), nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, input))

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


class Contractive(nn.Module):
    """d-H sigmoid encoder, H-d sigmoid decoder. State dict: encoder.{weight,bias}, decoder.{weight,bias}."""

    def __init__(self, input=784, hidden=64):
        super().__init__()
        self.encoder = nn.Linear(input, hidden)
        self.decoder = nn.Linear(hidden, input)

    def encode(self, x):
        return torch.sigmoid(self.encoder(x))

    def decode(self, z):
        return torch.sigmoid(self.decoder(z))

    def forward(self, x):
        return self.decode(self.encode(x))


class VAE(nn.Module):
    """d-H-ReLU to (mu, logvar); z = mu + exp(logvar / 2) eps; K-H-ReLU-d sigmoid.

    State dict: encoder.hidden, encoder.mu, encoder.logvar, decoder.hidden,
    decoder.out (``nn.ModuleDict``s). ``encode`` gives the mean, as gradtape's
    evaluation mode does.
    """

    def __init__(self, input=784, hidden=128, latent=100):
        super().__init__()
        self.encoder = nn.ModuleDict(
            {"hidden": nn.Linear(input, hidden), "mu": nn.Linear(hidden, latent), "logvar": nn.Linear(hidden, latent)}
        )
        self.decoder = nn.ModuleDict({"hidden": nn.Linear(latent, hidden), "out": nn.Linear(hidden, input)})

    def posterior(self, x):
        a = torch.relu(self.encoder["hidden"](x))
        return self.encoder["mu"](a), self.encoder["logvar"](a)

    def encode(self, x):
        return self.posterior(x)[0]

    def decode(self, z):
        return torch.sigmoid(self.decoder["out"](torch.relu(self.decoder["hidden"](z))))

    def forward(self, x):
        return self.decode(self.encode(x))


KINDS = ("zero-digit", "deep", "regularized", "denoising", "contractive", "vae")


def from_state_dict(kind, state_dict):
    """The module for gradtape model ``kind`` (``zero-digit``, ``deep``, ...) sized from a state dict's shapes."""
    shape = lambda name: tuple(state_dict[name + ".weight"].shape)  # noqa: E731  (out, in)
    if kind == "zero-digit":
        return ZeroDigit(shape("encoder")[0])
    if kind == "deep":
        widths = [shape("encoder.0")[1]]
        i = 0
        while f"encoder.{i}.weight" in state_dict:
            widths.append(shape(f"encoder.{i}")[0])
            i += 2
        return Deep(widths)
    if kind in ("regularized", "denoising"):
        return Regularized(shape("encoder.0")[1], shape("encoder.0")[0], shape("encoder.2")[0])
    if kind == "contractive":
        return Contractive(shape("encoder")[1], shape("encoder")[0])
    if kind == "vae":
        return VAE(shape("encoder.hidden")[1], shape("encoder.hidden")[0], shape("encoder.mu")[0])
    raise ValueError(f"unknown model {kind!r}; expected one of {', '.join(KINDS)}")
