"""A torch inference loop: the designed-in bottleneck is the model's forward pass (one
intra-op thread, a 4-layer MLP on 256-row batches, no_grad)."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import time  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

from _harness import parse_args, write_truth  # noqa: E402


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(512, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                                    nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(),
                                    nn.Linear(512, 10))

    def forward(self, x):
        return self.layers(x).softmax(dim=-1)


def main():
    args = parse_args(__doc__)
    torch.set_num_threads(1)
    torch.manual_seed(1)
    model = Classifier().eval()
    batch = torch.randn(256, 512)
    write_truth(args.truth, {"phase": "ready"})  # tests attach now, after imports
    end = time.perf_counter() + args.duration
    n = 0
    with torch.no_grad():
        while time.perf_counter() < end:
            out = model(batch)
            n += int(out.argmax(dim=-1)[0] >= 0)
    write_truth(args.truth, {"phase": "done", "batches": n, "expect": "model"})


if __name__ == "__main__":
    main()
