"""Training throughput of the paper's ResNet-34 on CIFAR-shaped data: a DataLoader loop against gce's path.

Usage: python benchmarks/throughput.py [--device cuda] [--steps 200] [--batch 128] [--workers 8]

(1) ``dataloader``: what the public implementations do -- a ``torch.utils.data.DataLoader``
    over PIL images with torchvision transforms (4-pixel pad + random 32x32 crop,
    horizontal flip, ToTensor, mean subtraction) in worker processes, float32.
(2) ``gce``: the path of :mod:`gce.train` -- the whole uint8 dataset on the device,
    mean subtraction, crop and flip done on the device per batch
    (``gce.train.preprocess``), channels-last, bf16 autocast (``--no-bf16`` to
    turn off), optionally ``torch.compile`` (``--compile``).

Both train the same network with SGD (momentum 0.9, weight decay 1e-4) at batch
128 on 50,000 random CIFAR-shaped images, and report training images per second
after ``--warmup`` steps, their ratio, and on a known GPU the fraction of its
dense bf16 peak that the gce path reaches (3x the forward FLOPs per image).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from gce import models
from gce.train import autocast_context, preprocess, SingleModel

#: Dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets, by a substring of the device name.
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12, "T4": 65e12}


def forward_flops(model: torch.nn.Module, device) -> float:
    x = torch.zeros(1, 3, 32, 32, device=device)
    with FlopCounterMode(display=False) as counter:
        model(x)
    return float(counter.get_total_flops())


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)


def bench_dataloader(images: np.ndarray, labels: np.ndarray, device, steps, warmup, batch, workers,
                     model_fn=models.resnet34) -> float:
    from PIL import Image
    from torchvision import transforms

    class PILDataset(torch.utils.data.Dataset):
        def __init__(self):
            self.t = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                         transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (1, 1, 1))])

        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            return self.t(Image.fromarray(images[i].transpose(1, 2, 0))), int(labels[i])

    loader = torch.utils.data.DataLoader(PILDataset(), batch_size=batch, shuffle=True, num_workers=workers,
                                         pin_memory=device.type == "cuda", drop_last=True,
                                         persistent_workers=workers > 0)
    torch.manual_seed(0)
    model = model_fn(10).to(device).train()
    opt = _sgd(model)
    done, start = 0, None
    while done < steps + warmup:
        for x, y in loader:
            if done == warmup:
                _sync(device)
                start = time.perf_counter()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == steps + warmup:
                break
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def bench_gce(images: np.ndarray, labels: np.ndarray, device, steps, warmup, batch, bf16, compile_,
              model_fn=models.resnet34) -> float:
    bank = torch.from_numpy(images).to(device)
    y_all = torch.from_numpy(labels).to(device)
    mean = bank.float().mean(0) / 255.0
    torch.manual_seed(0)
    model = SingleModel(model_fn(10), device, channels_last=device.type == "cuda", compile=compile_)
    model.train()
    opt = _sgd(model.m)
    autocast = autocast_context("bf16" if bf16 else "fp32", device)
    gen = torch.Generator().manual_seed(0)
    n = bank.shape[0]
    perm = torch.randperm(n, generator=gen).to(device)
    start = None
    for step in range(steps + warmup):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        s = (step * batch) % (n - batch)
        idx = perm[s:s + batch]
        x = preprocess(bank[idx], mean, True, gen).unsqueeze(0)
        with autocast():
            logits = model(x)[0]
        loss = torch.nn.functional.cross_entropy(logits.float(), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def compare(images: np.ndarray, labels: np.ndarray, device, steps: int = 200, warmup: int = 20, batch: int = 128,
            workers: int = 8, bf16: bool = True, compile_: bool = False, peak: float | None = None,
            model_fn=models.resnet34) -> dict:
    """Both loops on the same images, back to back in this process: images/s, their ratio, FLOPs, peak fraction.

    ``peak`` is the bf16 peak (FLOP/s) to compare with; by default the data-sheet value of :data:`BF16_PEAK`
    for the device (None where unknown).  ``model_fn(num_classes)`` builds the network (the paper's ResNet-34;
    a smaller one only for tests).
    """
    device = torch.device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    a = bench_dataloader(images, labels, device, steps, warmup, batch, workers, model_fn)
    b = bench_gce(images, labels, device, steps, warmup, batch, bf16, compile_, model_fn)
    flops = 3 * forward_flops(model_fn(10).to(device), device)
    if peak is None:
        peak = next((v for k, v in BF16_PEAK.items() if k in name), None)
    return {"device": name, "model": getattr(model_fn, "__name__", "model"), "batch": batch, "steps": steps,
            "warmup": warmup, "workers": workers,
            "precision": "bf16" if bf16 else "fp32", "compile": compile_,
            "dataloader_images_per_s": a, "gce_images_per_s": b, "ratio": b / a,
            "flop_per_training_image": flops, "gce_tflop_per_s": b * flops / 1e12,
            "bf16_peak_flop_per_s": peak, "fraction_of_bf16_peak": b * flops / peak if peak and bf16 else None}


def report(r: dict) -> str:
    """The lines :func:`main` prints for a :func:`compare` result."""
    lines = [f"{r['model']}, batch {r['batch']}, {r['steps']} timed steps after {r['warmup']}, "
             f"device: {r['device']}",
             f"dataloader + transforms (float32, {r['workers']} workers): "
             f"{r['dataloader_images_per_s']:10.0f} images/s",
             f"gce path ({r['precision']}{', compiled' if r['compile'] else ''}):{' ' * 12}"
             f"{r['gce_images_per_s']:10.0f} images/s",
             f"ratio: {r['ratio']:.2f}x"]
    if r["fraction_of_bf16_peak"] is not None:
        lines.append(f"gce path: {r['gce_tflop_per_s']:.1f} TFLOP/s = {100 * r['fraction_of_bf16_peak']:.1f}% of "
                     f"the bf16 peak {r['bf16_peak_flop_per_s'] / 1e12:.0f} TFLOP/s "
                     f"({r['flop_per_training_image'] / 1e9:.2f} GFLOP per training image)")
    else:
        lines.append(f"{r['flop_per_training_image'] / 1e9:.2f} GFLOP per training image; no bf16 peak known")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--images", type=int, default=50_000)
    p.add_argument("--no-bf16", action="store_true")
    p.add_argument("--compile", action="store_true")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, args.images).astype(np.int64)
    print(report(compare(images, labels, args.device, args.steps, args.warmup, args.batch, args.workers,
                         not args.no_bf16, args.compile)))


if __name__ == "__main__":
    main()
