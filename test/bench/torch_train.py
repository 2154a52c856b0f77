#!/usr/bin/env python3
"""Full-batch GD training throughput in PyTorch on a TF.js model, for Basin's benchmark.

Loads the model and loss with the PyTorch peer's own loader (its folder is put on sys.path), runs
`steps` steps of plain GD (the loop a user would write), and prints {"steps_per_s": ...}.
    /usr/bin/python3 torch_train.py PEER_DIR model.json data.json --steps 200 --lr 0.05
"""
import argparse, json, sys, time

ap = argparse.ArgumentParser()
ap.add_argument("peer_dir"); ap.add_argument("model"); ap.add_argument("data")
ap.add_argument("--steps", type=int, default=200); ap.add_argument("--lr", type=float, default=0.05)
ap.add_argument("--loss", default="categoricalCrossentropy"); ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
sys.path.insert(0, a.peer_dir)
import torch  # noqa: E402
from torch_peer import load_model, make_loss  # noqa: E402

torch.set_num_threads(a.threads)
params, acts = load_model(a.model, torch.float32)
data = json.load(open(a.data))
X = torch.tensor(data["x"], dtype=torch.float32); Y = torch.tensor(data["y"], dtype=torch.float32)
loss = make_loss(params, acts, X, Y, a.loss)
live = [p for p in params if p is not None]
for _ in range(5):  # warm-up
    g = torch.autograd.grad(loss(params), live)
t = time.perf_counter()
for _ in range(a.steps):
    g = torch.autograd.grad(loss(params), live)
    with torch.no_grad():
        for p, gi in zip(live, g):
            p.sub_(a.lr * gi)
elapsed = time.perf_counter() - t
print(json.dumps({"steps_per_s": a.steps / elapsed, "steps": a.steps, "final_loss": loss(params).item()}))
