"""PyTorch twin of `unet_speed.rs`: U-Net 1 (depth 5, base 16), batch 8, CE + soft Dice,
Adam, on the CPU; training and inference slices per second at 128x128 and 256x256.

The architecture mirrors shared/model/src/unet.rs layer for layer (3x3 'same' convs,
2x2 max-pool, 2x2 stride-2 transposed conv + ReLU, one 3x3 conv + ReLU on every skip,
1x1 output conv). The parameter count is printed so both sides can be compared.

    python3 shared/model/benches/unet_torch.py [cuda]   # needs torch (CPU is enough)
"""

import sys
import time

import torch
from torch import nn
import torch.nn.functional as F

BATCH = 8
CLASSES = 5


def conv3(cin, cout):
    return nn.Conv2d(cin, cout, 3, padding=1)


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.first, self.second = conv3(cin, cout), conv3(cout, cout)

    def forward(self, x):
        return F.relu(self.second(F.relu(self.first(x))))


class UpLevel(nn.Module):
    def __init__(self, below, skip, out):
        super().__init__()
        self.up = nn.ConvTranspose2d(below, out, 2, stride=2)
        self.skip = conv3(skip, skip)
        self.convs = DoubleConv(out + skip, out)

    def forward(self, below, skip):
        up = F.relu(self.up(below))
        return self.convs(torch.cat([up, F.relu(self.skip(skip))], 1))


class UNet1(nn.Module):
    def __init__(self, depth=5, base=16, max_filters=512):
        super().__init__()
        f = lambda level: min(base << level, max_filters)
        self.down = nn.ModuleList(
            DoubleConv(1 if l == 0 else f(l - 1), f(l)) for l in range(depth - 1)
        )
        bottom = depth - 1
        self.bridge = DoubleConv(f(bottom - 1), f(bottom))
        self.up = nn.ModuleList(UpLevel(f(l + 1), f(l), f(l)) for l in reversed(range(bottom)))
        self.output = nn.Conv2d(f(0), CLASSES, 1)

    def forward(self, x):
        skips = []
        for level in self.down:
            x = level(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bridge(x)
        for level in self.up:
            x = level(x, skips.pop())
        return self.output(x)


def loss(logits, labels):
    ce = F.cross_entropy(logits, labels)
    probabilities = logits.softmax(1)
    targets = F.one_hot(labels, CLASSES).permute(0, 3, 1, 2).float()
    intersection = (probabilities * targets).sum((0, 2, 3))
    total = probabilities.sum((0, 2, 3)) + targets.sum((0, 2, 3))
    return ce + 1 - ((2 * intersection + 1) / (total + 1)).mean()


def main():
    device = torch.device(sys.argv[1] if len(sys.argv) > 1 else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = UNet1()
    params = sum(p.numel() for p in model.parameters())
    print(f"PyTorch {torch.__version__} on {device}, {torch.get_num_threads()} threads; "
          f"U-Net 1, depth 5, base 16, {params} parameters, batch {BATCH}")
    print("| size | training slices/s | inference slices/s |")
    print("|---|---:|---:|")
    for size in (128, 256):
        model = UNet1().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
        images = torch.rand(BATCH, 1, size, size, device=device)
        labels = torch.randint(0, CLASSES, (BATCH, size, size), device=device)
        steps = 6 if size == 128 else 3

        def step():
            optimizer.zero_grad()
            value = loss(model(images), labels)
            value.backward()
            optimizer.step()

        step()  # warm-up
        sync()
        started = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        training = steps * BATCH / (time.perf_counter() - started)
        with torch.inference_mode():
            model(images)
            sync()
            started = time.perf_counter()
            for _ in range(steps):
                model(images).softmax(1)
            sync()
            inference = steps * BATCH / (time.perf_counter() - started)
        print(f"| {size}×{size} | {training:.1f} | {inference:.1f} |")


if __name__ == "__main__":
    main()
