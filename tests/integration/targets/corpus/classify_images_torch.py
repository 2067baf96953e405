"""Classifies batches of 64x64 images with a small convolutional network in PyTorch on
the CPU (inference under torch.no_grad, one intra-op thread).

The time is in torch's convolution and matmul kernels: model compute.
"""
import torch
from torch import nn

from _timing import Clock, parse_args


class SmallNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4))
        self.head = nn.Linear(64 * 16, classes)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def main():
    args = parse_args(__doc__)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = SmallNet().eval()
    images = torch.rand(16, 3, 64, 64)
    clock = Clock()
    batches = 0
    counts = torch.zeros(10, dtype=torch.long)
    with torch.no_grad():
        while clock.elapsed() < args.duration:
            with clock("model"):
                labels = model(images).argmax(dim=1)
            counts += torch.bincount(labels, minlength=10)
            batches += 1
    clock.write(args.truth, expect="model", batches=batches, images=int(counts.sum()))


if __name__ == "__main__":
    main()
