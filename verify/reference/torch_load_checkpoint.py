#!/usr/bin/env python3
"""PyTorch weights out: gradtape checkpoints load into PyTorch and compute the same thing.

For each of the six models (zero-digit, deep, regularized, denoising,
contractive, vae) this script

1. trains it for one short epoch with the real program
   (``gradtape train MODEL --epochs 1 --train-limit 256 ...``), which writes
   ``checkpoint.safetensors``;
2. asks gradtape for its outputs on the test digits: the codes
   (``gradtape encode``, all test images) and the reconstructions
   (``gradtape reconstruct --csv``, the first 100);
3. loads the checkpoint into the matching ``nn.Module`` of ``torch_models.py``
   with ``load_state_dict(..., strict=True)`` (the ``optimizer.`` entries,
   Adam's moments, are left out), runs the same test digits through it in
   float32, and compares both outputs with gradtape's;

and prints one line per model and a verdict (exit status 0 if all agree).

    python verify/reference/torch_load_checkpoint.py                  # all six
    python verify/reference/torch_load_checkpoint.py --checkpoint runs/vae/checkpoint.safetensors

``--gradtape`` names the program (default: ``target/release/gradtape``, built
first with ``cargo build --release``). Needs PyTorch and safetensors.
"""

import argparse
import csv
import gzip
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the repository
from torch_models import KINDS, from_state_dict  # noqa: E402

TEST_IMAGES = ROOT / "models" / "data" / "mnist-10k" / "t10k-images-idx3-ubyte.gz"
ZERO_DIGIT = [0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0]
# float32 on both sides, summed in different orders.
TOLERANCE = 1e-5
RECONSTRUCTIONS = 100


def test_images(kind):
    """gradtape's test split: the built-in t10k digits as byte / 255 in float32 (the zero-digit model: its one digit)."""
    if kind == "zero-digit":
        return torch.tensor([ZERO_DIGIT], dtype=torch.float32)
    with gzip.open(TEST_IMAGES, "rb") as f:
        raw = f.read()
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 2051, "unexpected IDX header"
    pixels = torch.frombuffer(bytearray(raw[16 : 16 + count * rows * cols]), dtype=torch.uint8)
    return (pixels.to(torch.float32) / 255.0).reshape(count, rows * cols)


def read_csv(path):
    """The ``index`` column and the numbers after ``index,label`` of a gradtape CSV."""
    with open(path) as f:
        rows = list(csv.reader(f))[1:]
    index = [int(r[0]) for r in rows]
    values = torch.tensor([[float(v) for v in r[2:]] for r in rows], dtype=torch.float32)
    return index, values


def run(gradtape, *args):
    out = subprocess.run([str(gradtape), *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"gradtape {' '.join(map(str, args))} failed:\n{out.stdout}{out.stderr}")


def check(gradtape, checkpoint, work):
    """Compares PyTorch's outputs for ``checkpoint`` with gradtape's; returns (model, ok, message)."""
    with safe_open(str(checkpoint), framework="pt") as f:
        kind = (f.metadata() or {}).get("model")
    if kind not in KINDS:
        sys.exit(f"{checkpoint}: not a gradtape training checkpoint (metadata 'model' is {kind!r})")
    codes_csv, recon_csv = work / f"{kind}-codes.csv", work / f"{kind}-reconstructions.csv"
    run(gradtape, "encode", "--checkpoint", checkpoint, "--out", codes_csv)
    run(gradtape, "reconstruct", "--checkpoint", checkpoint, "--n", RECONSTRUCTIONS,
        "--out", work / f"{kind}.png", "--csv", recon_csv)  # fmt: skip

    # The weights out, as a user would load them.
    tensors = load_file(str(checkpoint))
    state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    model = from_state_dict(kind, state)
    model.load_state_dict(state, strict=True)
    model.eval()

    x = test_images(kind)
    with torch.no_grad():
        index, codes = read_csv(codes_csv)
        code_diff = (model.encode(x[index]) - codes).abs().max().item()
        index, recons = read_csv(recon_csv)
        recon_diff = (model(x[index]) - recons).abs().max().item()
    ok = code_diff <= TOLERANCE and recon_diff <= TOLERANCE
    message = (
        f"{kind:12} {len(state)} tensors loaded strictly; max |difference| codes {code_diff:.1e}, "
        f"reconstructions {recon_diff:.1e}: {'ok' if ok else 'DIFFERENT'}"
    )
    return kind, ok, message


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gradtape", type=Path, help="the program (default: built with cargo, --release)")
    parser.add_argument("--checkpoint", type=Path, action="append", help="check these instead of training six")
    args = parser.parse_args()
    if args.gradtape is None:
        build = ["cargo", "build", "--quiet", "--release", "-p", "gradtape-examples", "--bin", "gradtape"]
        subprocess.run(build, cwd=ROOT, check=True)
        args.gradtape = ROOT / "target" / "release" / "gradtape"

    print(f"PyTorch {torch.__version__}, {args.gradtape}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoints = args.checkpoint
        if not checkpoints:
            checkpoints = []
            for kind in KINDS:
                out = work / kind
                run(args.gradtape, "train", kind, "--epochs", 1, "--train-limit", 256, "--test-limit", 100,
                    "--quiet", "--out", out)  # fmt: skip
                checkpoints.append(out / "checkpoint.safetensors")
        for checkpoint in checkpoints:
            kind, ok, message = check(args.gradtape, checkpoint, work)
            print(message)
            results.append(ok)
    if all(results):
        print(f"verdict: {len(results)} of {len(results)} gradtape checkpoints load into PyTorch with strict=True "
              f"and give gradtape's codes and reconstructions to {TOLERANCE:g}")  # fmt: skip
    else:
        print(f"verdict: FAILED for {results.count(False)} of {len(results)} checkpoints")
        sys.exit(1)


if __name__ == "__main__":
    main()
