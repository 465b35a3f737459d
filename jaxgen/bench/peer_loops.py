"""The loops `jaxgen bench peers` times beside the driver, all on the same work: MLP 784-H-H-10 (ReLU),
softmax cross-entropy, Adam, batch B, float32 parameters, every batch already on the device.

- jax_scan: the reference loop: one jitted `lax.scan` over an Adam step, state donated;
- jax_step: the same step jitted alone and dispatched from a Python loop;
- gemm_only: the step's 8 matrix products alone, at its shapes (the bound at these shapes);
- torch_eager: PyTorch doing the same work eagerly (when `import torch` works);
- torch_graph: the whole PyTorch step captured in one CUDA graph (CUDA only).

Each timer runs `steps` steps per call and returns samples/s; the first call compiles or warms up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

D, C = 784, 10
JAX_LOOPS = ("jax_scan", "jax_step", "gemm_only")
TORCH_LOOPS = ("torch_eager", "torch_graph")


def synthetic_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n random images [n, D] in [0, 1) and labels [n], the same for every loop."""
    rng = np.random.default_rng(0)
    return rng.random((n, D), dtype=np.float32), rng.integers(0, C, n).astype(np.int32)


def _adam_step(hidden: int) -> tuple[Callable, Callable]:
    """(step, fresh): one Adam step of the MLP on a batch, as a scan body; a fresh (params, opt state)."""
    import flax.linen as nn
    import jax.numpy as jnp
    import optax

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Dense(hidden)(x))
            x = nn.relu(nn.Dense(hidden)(x))
            return nn.Dense(C)(x)

    model, tx = MLP(), optax.adam(1e-3)

    def step(carry, xy):
        params, opt = carry

        def loss_fn(p):
            return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, xy[0]), xy[1]).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), opt), loss

    def fresh():
        params = model.init(jax.random.key(0), jnp.zeros((1, D)))
        return params, tx.init(params)

    return step, fresh


def _products(Ws, x):
    """The step's matrix products alone, at its shapes: 3 forward, 5 backward (no input gradient)."""
    W1, W2, W3 = Ws
    h1 = x @ W1
    h2 = h1 @ W2
    d3 = h2 @ W3  # stands in for dL/dlogits
    d2 = d3 @ W3.T
    d1 = d2 @ W2.T
    grads = (x.T @ d1, h1.T @ d2, h2.T @ d3)
    # a tiny update keeps each step dependent on the last
    return tuple(W - 1e-9 * g for W, g in zip(Ws, grads, strict=True)), d3[0, 0]


def _gemm_timer(hidden: int, batch: int, steps: int, X: jax.Array) -> Callable[[], float]:
    gemm = jax.jit(lambda Ws, X: jax.lax.scan(_products, Ws, X), donate_argnums=0)
    keys = jax.random.split(jax.random.key(1), 3)
    shapes = ((D, hidden), (hidden, hidden), (hidden, C))
    box = {"Ws": tuple(0.01 * jax.random.normal(k, s) for k, s in zip(keys, shapes, strict=True))}

    def time_gemm() -> float:
        t0 = time.perf_counter()
        box["Ws"], last = gemm(box["Ws"], X)
        last.block_until_ready()
        return steps * batch / (time.perf_counter() - t0)

    return time_gemm


def jax_loops(hidden: int, batch: int, steps: int) -> dict[str, Callable[[], float]]:
    """jax_scan, jax_step and gemm_only timers (each call: `steps` steps, returns samples/s)."""
    import jax.numpy as jnp

    step, fresh = _adam_step(hidden)
    x, y = synthetic_data(steps * batch)
    X, Y = jnp.asarray(x).reshape(steps, batch, D), jnp.asarray(y).reshape(steps, batch)
    scan = jax.jit(lambda c, X, Y: jax.lax.scan(step, c, (X, Y)), donate_argnums=0)
    one = jax.jit(step, donate_argnums=0)
    box = {"scan": fresh(), "step": fresh()}

    def time_scan() -> float:
        t0 = time.perf_counter()
        box["scan"], losses = scan(box["scan"], X, Y)
        losses.block_until_ready()
        return steps * batch / (time.perf_counter() - t0)

    def time_step() -> float:
        t0 = time.perf_counter()
        c = box["step"]
        for i in range(steps):
            c, loss = one(c, (X[i], Y[i]))
        loss.block_until_ready()
        box["step"] = c
        return steps * batch / (time.perf_counter() - t0)

    return {"jax_scan": time_scan, "jax_step": time_step, "gemm_only": _gemm_timer(hidden, batch, steps, X)}


class _Torch:
    """The PyTorch side of the work: the data on the device, a fresh MLP, the loss, a device sync."""

    def __init__(self, torch: Any, hidden: int, batch: int, steps: int):
        self.torch, self.hidden, self.batch, self.steps = torch, hidden, batch, steps
        self.cuda = torch.cuda.is_available()
        self.dev = "cuda" if self.cuda else "cpu"
        torch.manual_seed(0)
        x, y = synthetic_data(steps * batch)
        self.X, self.Y = torch.from_numpy(x).to(self.dev), torch.from_numpy(y).long().to(self.dev)
        self.lossf = torch.nn.CrossEntropyLoss()

    def mlp(self):
        nn, h = self.torch.nn, self.hidden
        return nn.Sequential(nn.Linear(D, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, C)).to(
            self.dev
        )

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def rows(self, i: int) -> tuple[Any, Any]:
        return self.X[i * self.batch : (i + 1) * self.batch], self.Y[i * self.batch : (i + 1) * self.batch]


def _torch_eager(t: _Torch) -> Callable[[], float]:
    m = t.mlp()
    opt = t.torch.optim.Adam(m.parameters(), 1e-3)

    def eager_step(i):
        opt.zero_grad(set_to_none=True)
        x, y = t.rows(i)
        loss = t.lossf(m(x), y)
        loss.backward()
        opt.step()
        return loss

    def time_eager() -> float:
        t.sync()
        t0 = time.perf_counter()
        for i in range(t.steps):
            loss = eager_step(i)
        float(loss.detach())
        t.sync()
        return t.steps * t.batch / (time.perf_counter() - t0)

    for i in range(3):
        eager_step(i)
    return time_eager


def _torch_graph(t: _Torch) -> Callable[[], float]:
    torch = t.torch
    m = t.mlp()
    opt = torch.optim.Adam(m.parameters(), 1e-3, capturable=True)
    sx, sy = t.X[: t.batch].clone(), t.Y[: t.batch].clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            t.lossf(m(sx), sy).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        t.lossf(m(sx), sy).backward()
        opt.step()

    def time_graph() -> float:
        t.sync()
        t0 = time.perf_counter()
        for i in range(t.steps):
            x, y = t.rows(i)
            sx.copy_(x)
            sy.copy_(y)
            graph.replay()
        t.sync()
        return t.steps * t.batch / (time.perf_counter() - t0)

    return time_graph


def torch_loops(hidden: int, batch: int, steps: int, which: tuple[str, ...]) -> dict[str, Any]:
    """torch_eager (and on CUDA torch_graph) timers; a reason string for each one that cannot run."""
    try:
        import torch
    except Exception as err:  # noqa: BLE001 - any import failure means "not installed here"
        why = f"torch not importable ({type(err).__name__}): pip install 'jaxgen[peers]' to compare"
        return {k: why for k in which}
    t = _Torch(torch, hidden, batch, steps)
    out: dict[str, Any] = {}
    if "torch_eager" in which:
        out["torch_eager"] = _torch_eager(t)
    if "torch_graph" in which:
        out["torch_graph"] = _torch_graph(t) if t.cuda else "CUDA graphs need a CUDA device"
    return out


def torch_info() -> str | None:
    """The PyTorch that runs the torch rows, "PyTorch VERSION, N threads", for the report's header; None
    where torch does not import."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - any import failure means "not installed here"
        return None
    return f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads"


# ---------------------------------------------------------------- the CNN step (`arch=conv`)
#
# The work: jaxgen's default CNN classifier (`jaxgen train mlp --set arch=conv`: 3x3 convolutions of
# `channels` maps, each with BatchNorm (norm=batch), ReLU and 2x2 max pooling, dense `head`, 10 logits),
# softmax cross-entropy, Adam 1e-3, batch B, no augmentation, no dropout, no label smoothing.
CNN_LOOPS = ("cnn_chunk", "cnn_other_chunk", "cnn_xla_step")
CNN_TORCH_LOOPS = ("cnn_torch_eager",)


def cnn_config(batch: int, steps: int) -> Any:
    """The classifier config the CNN rows time (its convolution widths and head are the defaults)."""
    from jaxgen import tasks

    over = {"arch": "conv", "batch_size": batch, "steps": max(steps, 2), "dropout": 0.0, "augment": False,
            "label_smoothing": 0.0, "weight_decay": 0.0, "warmup_steps": 0}  # fmt: skip
    return tasks.make_config("mlp", over)


def cnn_flops_per_sample(channels: tuple[int, ...], head: tuple[int, ...]) -> int:
    """Matrix-product FLOPs of one training sample: 3 x the forward products (forward, input and weight
    gradients), as the reference scripts count them."""
    side, cin, fwd = 28, 1, 0
    for c in channels:
        fwd += 2 * side * side * 9 * cin * c
        side, cin = side // 2, c
    widths = (side * side * cin, *head, C)
    fwd += sum(2 * a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return 3 * fwd


def cnn_jax_loops(batch: int, steps: int) -> dict[str, Callable[[], float]]:
    """cnn_chunk: the classifier task's own step (arch=conv, conv_impl=auto) scanned as the driver's chunk
    runs it; cnn_other_chunk: the same chunk with the implementation auto does not pick here (the
    measurement behind the choice; on the CPU XLA's convolution in a scan is ~20x slower, so it runs a
    tenth of the steps); cnn_xla_step: the step with XLA's convolution jitted alone, called from Python."""
    import dataclasses

    import jax.numpy as jnp

    from jaxgen import convs, data, tasks

    ds = data.load("embedded")
    x, y = synthetic_data(steps * batch)
    X = jnp.asarray((x * 255).astype(np.uint8)).reshape(steps, batch, *ds.shape)  # images [B, H, W, C]
    Y = jnp.asarray(y).reshape(steps, batch)
    keys = jax.random.split(jax.random.key(0), steps)
    out = {}
    other = "xla" if convs.resolve_impl("auto") == "slices" else "slices"
    few = max(2, steps // 10) if jax.default_backend() == "cpu" and other == "xla" else steps
    for name, impl, n in (
        ("cnn_chunk", "auto", steps),
        ("cnn_other_chunk", other, few),
        ("cnn_xla_step", "xla", steps),
    ):
        task = tasks.build(dataclasses.replace(cnn_config(batch, steps), conv_impl=impl), ds)
        body = lambda s, xyk, task=task: task.step(s, {"image": xyk[0], "label": xyk[1]}, xyk[2])
        box = {"s": jax.jit(task.init)(jax.random.key(0))}
        if name.endswith("_chunk"):
            chunk = jax.jit(lambda s, X, Y, K, body=body: jax.lax.scan(body, s, (X, Y, K)), donate_argnums=0)

            def timer(chunk=chunk, box=box, n=n) -> float:
                t0 = time.perf_counter()
                box["s"], m = chunk(box["s"], X[:n], Y[:n], keys[:n])
                m["loss"].block_until_ready()
                return n * batch / (time.perf_counter() - t0)
        else:
            one = jax.jit(body, donate_argnums=0)

            def timer(one=one, box=box) -> float:
                t0 = time.perf_counter()
                s = box["s"]
                for i in range(steps):
                    s, m = one(s, (X[i], Y[i], keys[i]))
                m["loss"].block_until_ready()
                box["s"] = s
                return steps * batch / (time.perf_counter() - t0)

        out[name] = timer
    return out


def cnn_torch_eager(batch: int, steps: int) -> Callable[[], float] | str:
    """PyTorch eager doing the CNN step's work (same layers and widths, BatchNorm, Adam), or why not."""
    try:
        import torch
    except Exception as err:  # noqa: BLE001 - any import failure means "not installed here"
        return f"torch not importable ({type(err).__name__}): pip install 'jaxgen[peers]' to compare"
    cfg = cnn_config(batch, steps)
    nn = torch.nn
    layers, cin, side = [], 1, 28
    for c in cfg.channels:
        bn = cfg.norm == "batch"
        layers += [nn.Conv2d(cin, c, 3, padding=1, bias=not bn), *([nn.BatchNorm2d(c)] if bn else [])]
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        cin, side = c, side // 2
    widths = (side * side * cin, *cfg.head)
    layers.append(nn.Flatten())
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], C))
    t = _Torch(torch, 1, batch, steps)
    m = nn.Sequential(*layers).to(t.dev)
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    images = t.X.reshape(-1, 1, 28, 28)

    def one(i):
        opt.zero_grad(set_to_none=True)
        loss = t.lossf(m(images[i * batch : (i + 1) * batch]), t.Y[i * batch : (i + 1) * batch])
        loss.backward()
        opt.step()
        return loss

    for i in range(3):
        one(i)

    def timer() -> float:
        t.sync()
        t0 = time.perf_counter()
        for i in range(steps):
            loss = one(i)
        float(loss.detach())
        t.sync()
        return steps * batch / (time.perf_counter() - t0)

    return timer
