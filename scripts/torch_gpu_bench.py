"""PyTorch eager on a CUDA GPU: the deep_ae and vae workloads of
../shared/peers/torch_bench.py (same models, losses, data, optimisers and
learning rates), moved to `cuda`, at the batch sizes of gradtape's GPU
benchmark (`bench gpu`): deep_ae at 256 and 4096, vae at 64.

Usage: python3 torch_gpu_bench.py [workload ...]   (default: all three)

Prints one line per workload, as `bench` does:
name, unit, median samples/s, final loss, kernel launches per training step
(CUDA kernel events of one step under torch.profiler; memset and memcpy
are not kernels and are not counted), and the device.

Timing as the peer script: 5 warm-up steps, then groups of 5 steps for 3
seconds, median rate of the groups; the GPU is synchronised before each
clock reading (torch queues work asynchronously).

The data are the project's built-in 8,000 MNIST digits
(models/data/mnist-10k), found relative to this file whether it sits in
scripts/ or in .gpu/, or given with --data PATH.
"""
import gzip
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
DEV = torch.device("cuda")


def data_path():
    if "--data" in sys.argv:
        return sys.argv[sys.argv.index("--data") + 1]
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", "models", "data", "mnist-10k", "train-images-idx3-ubyte.gz")


def load_idx_images(path):
    with gzip.open(path) as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(n, h * w).astype(np.float32) / 255.0


def mnist(n=8192):
    x = load_idx_images(data_path())
    return torch.from_numpy(x[:n].copy()).to(DEV)


def rate(step, units_per_step, seconds=3.0, warmup=5):
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    samples = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end or not samples:
        t0 = time.perf_counter()
        for _ in range(5):
            loss = step()
        torch.cuda.synchronize()
        samples.append(units_per_step * 5 / (time.perf_counter() - t0))
    return statistics.median(samples), float(loss)


def launches_per_step(step):
    """CUDA kernels launched by one (warm) step, from torch.profiler."""
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    kernels = 0
    for e in prof.events():
        kind = getattr(e, "device_type", None)
        if kind != torch.autograd.DeviceType.CUDA:
            continue
        name = e.name.lower()
        # Memory copies and sets show up as CUDA events too; they are not
        # kernel launches.
        if name.startswith("memcpy") or name.startswith("memset"):
            continue
        kernels += 1
    return kernels


# deep AE 784-128-64-12-64-128-784, ReLU, Tanh out, MSE + 1e-5*||code||,
# Adam 1e-3.
def deep_ae(B):
    X = mnist()
    enc = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 12)).to(DEV)
    dec = nn.Sequential(
        nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 784), nn.Tanh()
    ).to(DEV)
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)
    it = [0]

    def step():
        i = it[0] % (X.shape[0] // B)
        it[0] += 1
        d = X[i * B:(i + 1) * B]
        code = enc(d)
        out = dec(code)
        loss = F.mse_loss(out, d) + 1e-5 * torch.norm(code, p=2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    return step


# VAE 784-128-(100,100) / 100-128-784, BCE sum + KL, Adam 1e-3; the loss is
# reported per sample.
def vae(B):
    X = mnist()
    Wxh, Wmu, Wlv = nn.Linear(784, 128).to(DEV), nn.Linear(128, 100).to(DEV), nn.Linear(128, 100).to(DEV)
    Wzh, Whx = nn.Linear(100, 128).to(DEV), nn.Linear(128, 784).to(DEV)
    params = [p for m in (Wxh, Wmu, Wlv, Wzh, Whx) for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    it = [0]

    def step():
        i = it[0] % (X.shape[0] // B)
        it[0] += 1
        x = X[i * B:(i + 1) * B]
        h = F.relu(Wxh(x))
        mu, lv = Wmu(h), Wlv(h)
        z = mu + torch.exp(lv / 2) * torch.randn_like(mu)
        xs = torch.sigmoid(Whx(F.relu(Wzh(z))))
        loss = F.binary_cross_entropy(xs, x, reduction="sum") + 0.5 * torch.sum(torch.exp(lv) + mu ** 2 - 1 - lv)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach() / B

    return step


WORKLOADS = {
    "torch_gpu_deep_ae_256": (deep_ae, 256),
    "torch_gpu_deep_ae_4096": (deep_ae, 4096),
    "torch_gpu_vae_64": (vae, 64),
}

if __name__ == "__main__":
    names, rest = [], sys.argv[1:]
    while rest:
        a, rest = rest[0], rest[1:]
        if a == "--data":
            rest = rest[1:]  # its value is read by data_path()
        else:
            names.append(a)
    names = names or list(WORKLOADS)
    if not torch.cuda.is_available():
        print("# torch_gpu_bench: skipped: torch sees no CUDA device")
        sys.exit(0)
    print(f"# torch {torch.__version__} eager, device {torch.cuda.get_device_name(0)}", flush=True)
    for n in names:
        make, B = WORKLOADS[n]
        step = make(B)
        r, loss = rate(step, B)
        k = launches_per_step(step)
        print(
            f"{n}\tsamples/s\t{r:.1f}\tloss={loss:.5f}\tlaunches_per_step={k}\tdevice={torch.cuda.get_device_name(0)}",
            flush=True,
        )
