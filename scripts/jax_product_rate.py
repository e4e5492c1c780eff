"""JAX's rate on the 256x784x128 product, timed two ways.

The peer script (../shared/peers/jax_bench.py, workload gemm_256x784x128)
times one product per jitted call, so each product also pays a dispatch and
a readback. Here the same product runs 20 times inside one jitted call (a
`fori_loop`; each pass scales the left operand by a different number so the
products cannot be folded into one, which adds a little elementwise work),
which is closer to how the products run inside a jitted training step. The
difference says how much of JAX's deep_ae "ceiling fraction" in
scripts/compare_peers.sh comes from a slow denominator.

    PYTHON scripts/jax_product_rate.py      # in the peers' venv (see compare_peers.sh)
"""
import time

import jax
import jax.numpy as jnp

FLOP = 2 * 256 * 784 * 128


def gflops(f, a, b, products, seconds=1.0, rounds=5):
    f(a, b).block_until_ready()
    rates = []
    for _ in range(rounds):
        t0, calls = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            f(a, b).block_until_ready()
            calls += 1
        rates.append(FLOP * products * calls / (time.perf_counter() - t0) / 1e9)
    return sorted(rates)[rounds // 2]


def main():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    a, b = jax.random.normal(k1, (256, 784)), jax.random.normal(k2, (784, 128))
    one = jax.jit(lambda a, b: (a @ b)[0, 0])

    def twenty(a, b):
        body = lambda i, acc: acc + (a * (1.0 + i * 1e-7)) @ b
        return jax.lax.fori_loop(0, 20, body, jnp.zeros((256, 128)))[0, 0]

    print(f"# jax {jax.__version__}; median of 5 one-second rounds")
    print(f"one product per call\tGFLOP/s\t{gflops(one, a, b, 1):.1f}")
    print(f"20 products per call\tGFLOP/s\t{gflops(jax.jit(twenty), a, b, 20):.1f}")


if __name__ == "__main__":
    main()
