"""PyTorch reference of the Osteo EDC network (model/src/net.rs), for speed
comparison only — not part of the build or CI.

The same architecture as `osteo_model::net::Net` with the default
`NetConfig` (384² views, channels 16-32-64-128, one basic residual block per
stage, log-sum-exp pooling over the kept positions, attention over views,
clinical branch, fusion MLP), the same benchmark as `osteo-edc model bench`:
one case of two views, batch 1, and training steps of 8 cases with AdamW.

    pip install torch --index-url <a CPU wheel index>   # or: pip install torch
    python model/reference/bench.py --threads 2

Prints JSON with the same keys as `osteo-edc model bench`.
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F

FEATURES = 36  # osteo_model::clinical::FEATURES
LSE_SHARPNESS = 12.0  # NetConfig::pool_sharpness


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class Net(nn.Module):
    def __init__(self, channels=(16, 32, 64, 128), attention_hidden=32, clinical_hidden=32, fusion_hidden=64, dropout=0.2):
        super().__init__()
        c0 = channels[0]
        self.stem = nn.Conv2d(1, c0, 5, 2, 2, bias=False)
        self.stem_norm = nn.BatchNorm2d(c0)
        blocks, cin = [], c0
        for i, cout in enumerate(channels):
            blocks.append(Block(cin, cout, 1 if i == 0 else 2))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.attention_in = nn.Linear(cin, attention_hidden)
        self.attention_out = nn.Linear(attention_hidden, 1)
        self.clinical = nn.Linear(FEATURES, clinical_hidden)
        self.dropout = nn.Dropout(dropout)
        self.fusion = nn.Linear(cin + clinical_hidden, fusion_hidden)
        self.output = nn.Linear(fusion_hidden, 1)

    def forward(self, images, positions, mask, clinical):
        b, v = mask.shape
        maps = self.blocks(F.relu(self.stem_norm(self.stem(images))))
        n, c, h, w = maps.shape
        flat = maps.reshape(n, c, h * w)
        masked = flat + (positions - 1.0) * 1.0e4
        top = masked.amax(dim=2, keepdim=True).detach()
        kept = positions.sum(dim=2, keepdim=True).clamp_min(1.0)
        pooled = (torch.log(torch.exp((masked - top) * LSE_SHARPNESS).sum(dim=2, keepdim=True) / kept) / LSE_SHARPNESS + top)
        pooled = pooled.reshape(b, v, c)
        scores = self.attention_out(torch.tanh(self.attention_in(pooled))).reshape(b, v) + (mask - 1.0) * 1.0e4
        attention = torch.softmax(scores, dim=1)
        case = (pooled * attention.reshape(b, v, 1)).sum(dim=1)
        fused = torch.cat([case, F.relu(self.clinical(clinical))], dim=1)
        return self.output(F.relu(self.fusion(self.dropout(fused)))).reshape(b)


def inputs(b, v, size, m):
    images = (torch.arange(b * v * size * size) % 977).float().div(977.0).mul(2.0).reshape(b * v, 1, size, size)
    clinical = (torch.arange(b * FEATURES) % 3).float().div(2.0).reshape(b, FEATURES)
    return images, torch.ones(b * v, 1, m * m), torch.ones(b, v), clinical


def timing(ms):
    return {"mean": statistics.mean(ms), "median": statistics.median(ms), "min": min(ms), "max": max(ms), "runs": len(ms)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--image-size", type=int, default=384)
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    size, v = a.image_size, a.views
    m = size
    for _ in range(4):
        m = (m + 1) // 2
    net = Net().eval()
    infer = []
    with torch.inference_mode():
        for i in range(a.iterations + 1):
            x = inputs(1, v, size, m)
            t = time.perf_counter()
            net(*x).tolist()
            if i > 0:
                infer.append((time.perf_counter() - t) * 1e3)
    train_net = Net().train()
    opt = torch.optim.AdamW(train_net.parameters(), lr=1e-3)
    labels = torch.tensor([j % 2 for j in range(a.train_batch)], dtype=torch.float32)
    steps = []
    for i in range(a.train_steps + 1):
        x = inputs(a.train_batch, v, size, m)
        t = time.perf_counter()
        z = train_net(*x)
        loss = F.binary_cross_entropy_with_logits(z, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        if i > 0:
            steps.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({
        "backend": f"pytorch {torch.__version__} cpu",
        "image_size": size,
        "views": v,
        "parameters": sum(p.numel() for p in net.parameters()),
        "threads": torch.get_num_threads(),
        "inference_ms_per_case": timing(infer),
        "train_batch_cases": a.train_batch,
        "train_step_ms": timing(steps),
        "train_images_per_second": a.train_batch * v / (statistics.mean(steps) / 1e3),
    }, indent=2))


if __name__ == "__main__":
    main()
