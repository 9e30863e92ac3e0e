"""PyTorch (CPU) side of bench/run: one workload, one JSON line.

    python pytorch.py --workload W1 --threads 1 --samples 32768 --min-time 2
    python pytorch.py --versions

A standard training loop: model.train(); per batch optimizer.zero_grad(),
loss.backward(), optimizer.step(); Adam(lr=1e-3) with Keras's epsilon (1e-7).
Data are in-memory tensors, reshuffled every epoch by indexing with
torch.randperm once per epoch (as Keras and Lamina shuffle), then sliced
into batches. The models end in logits and train with the fused
nn.CrossEntropyLoss, what a PyTorch user writes; predict applies the softmax
so the outputs match the Keras models. Predict runs under torch.no_grad()
with model.eval(). W2 uses PyTorch's native NCHW layout. The timing protocol
is the one bench/workloads.c documents. Threads: torch.set_num_threads(n),
torch.set_num_interop_threads(1), plus OMP_NUM_THREADS / MKL_NUM_THREADS set
by bench/run before Python starts.
"""
import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def status_mb(key):
    """A memory line of /proc/self/status ("VmHWM", "VmRSS") in MB, or -1."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return -1.0


BATCH = {"W1": 32, "W2": 32, "W3": 32, "W4": 128}
X_SHAPE = {"W1": (100,), "W2": (1, 28, 28), "W3": (10, 1), "W4": (784,)}


def build(torch, wid):
    nn = torch.nn
    if wid == "W1":
        return nn.Sequential(nn.Linear(100, 64), nn.ReLU(), nn.Linear(64, 10))
    if wid == "W2":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(32 * 13 * 13, 128), nn.ReLU(), nn.Linear(128, 10))
    if wid == "W3":
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm1 = nn.LSTM(1, 50, batch_first=True)
                self.lstm2 = nn.LSTM(50, 50, batch_first=True)
                self.dense = nn.Linear(50, 1)

            def forward(self, x):
                x, _ = self.lstm1(x)
                x, _ = self.lstm2(x)
                return self.dense(x[:, -1])

        return Net()
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", choices=sorted(BATCH))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samples", type=int, default=8192)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--versions", action="store_true")
    a = ap.parse_args()

    import torch
    import_rss = status_mb("VmRSS")  # the framework alone, before any data

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    if a.versions:
        print(json.dumps({"torch": torch.__version__}))
        return 0
    if not a.workload:
        ap.error("--workload is required")

    wid, batch, n = a.workload, BATCH[a.workload], a.samples
    torch.manual_seed(1)
    if wid == "W3":
        x = torch.randn((n,) + X_SHAPE[wid])
        y = torch.randn((n, 1))
        loss_fn = torch.nn.MSELoss()
    else:
        x = torch.rand((n,) + X_SHAPE[wid])
        y = torch.randint(0, 10, (n,))
        loss_fn = torch.nn.CrossEntropyLoss()
    model = build(torch, wid)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def fit(xs, ys, epochs):
        model.train()
        total = 0.0
        for _ in range(epochs):
            perm = torch.randperm(xs.shape[0])
            xp, yp = xs[perm], ys[perm]
            total = 0.0
            for i in range(0, xs.shape[0], batch):
                xb, yb = xp[i:i + batch], yp[i:i + batch]
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                total += loss.item() * xb.shape[0]
        return total / xs.shape[0]

    def predict(xs):
        model.eval()
        outs = []
        with torch.no_grad():
            for i in range(0, xs.shape[0], batch):
                out = model(xs[i:i + batch])
                outs.append(out if wid == "W3" else torch.softmax(out, dim=1))
        return torch.cat(outs)

    nw = min(n, 10 * batch)
    fit(x[:nw], y[:nw], 1)
    predict(x[:nw])

    # process_time: CPU time of all threads, to read samples per CPU-second
    t0, c0, el, epochs, loss = time.perf_counter(), time.process_time(), 0.0, 0, float("nan")
    while True:
        more = math.ceil((a.min_time - el) / (el / epochs)) if epochs else 1
        loss = fit(x, y, more)
        epochs += more
        el = time.perf_counter() - t0
        if el >= a.min_time:
            break
    train_s, train_cpu_s = el, time.process_time() - c0

    calls, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        predict(x)
        calls += 1
        predict_s = time.perf_counter() - t0
        if predict_s >= a.min_time:
            break
    predict_cpu_s = time.process_time() - c0

    if not math.isfinite(loss):
        print(f"pytorch {wid}: the loss is {loss} after training", file=sys.stderr)
        return 1
    print(json.dumps({
        "workload": wid, "framework": "pytorch", "threads": a.threads, "batch": batch,
        "samples": n, "train_sps": epochs * n / train_s, "predict_sps": calls * n / predict_s,
        "train_s": train_s, "predict_s": predict_s, "train_cpu_s": train_cpu_s,
        "predict_cpu_s": predict_cpu_s, "train_samples": epochs * n,
        "predict_samples": calls * n, "loss": loss, "vmhwm_mb": status_mb("VmHWM"),
        "import_rss_mb": import_rss,
        "num_threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
