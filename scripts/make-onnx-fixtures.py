#!/usr/bin/env python3
"""Writes the ONNX import fixtures in test/fixtures/onnx/ with PyTorch's own exporter.

For each model: NAME.onnx (torch.onnx.export, float32 weights), NAME.npz (x in PyTorch's layout,
NCHW for images, y integer class labels) and NAME.ref.json, the float64 values PyTorch computes
for nn.CrossEntropyLoss on the same weights and data: loss, gradient, the Hessian-vector product
H v for a fixed v, and the top eigenvalues of the dense Hessian. Vectors are in
`named_parameters()` order, each tensor flattened row-major in PyTorch's layout.

Models: mlp (Linear, tanh), convnet (Conv, BatchNorm, residual Add, MaxPool, Flatten), leaky
(Linear with LeakyReLU of slope 0.2 and of PyTorch's default 0.01).

Run: /usr/bin/python3 scripts/make-onnx-fixtures.py   (torch 1.13, numpy)
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'onnx')


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 12)
        self.fc2 = nn.Linear(12, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 3 * 4, 3)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = torch.relu(self.conv2(h) + h)
        h = self.pool(h)
        return self.fc(torch.flatten(h, 1))


class LeakyMlp(nn.Module):
    """LeakyReLU with a chosen slope and with PyTorch's default (0.01)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 10)
        self.act1 = nn.LeakyReLU(0.2)
        self.fc2 = nn.Linear(10, 8)
        self.act2 = nn.LeakyReLU()
        self.fc3 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


def flat(ts):
    return torch.cat([t.reshape(-1) for t in ts])


def reference(model, x, y):
    m = model.double().eval()
    names = [n for n, _ in m.named_parameters()]
    shapes = [list(p.shape) for _, p in m.named_parameters()]
    params = [p.detach().clone() for _, p in m.named_parameters()]
    xd = torch.from_numpy(x).double()
    yl = torch.from_numpy(y).long()
    crit = nn.CrossEntropyLoss()

    def loss_of(theta):
        ps, at = {}, 0
        for n, p in zip(names, params):
            ps[n] = theta[at:at + p.numel()].reshape(p.shape)
            at += p.numel()
        out = torch.func.functional_call(m, ps, (xd,)) if hasattr(torch, 'func') else torch.nn.utils.stateless.functional_call(m, ps, (xd,))
        return crit(out, yl)

    theta = flat(params)
    t = theta.clone().requires_grad_(True)
    loss = loss_of(t)
    (grad,) = torch.autograd.grad(loss, t, create_graph=True)
    v = torch.from_numpy(np.random.default_rng(7).standard_normal(theta.numel()))
    (hv,) = torch.autograd.grad(grad, t, v)
    h = torch.autograd.functional.hessian(loss_of, theta)
    eig = np.linalg.eigvalsh(h.numpy())[::-1]
    return {
        'names': names,
        'shapes': shapes,
        'numParams': int(theta.numel()),
        'loss': float(loss),
        'grad': grad.detach().numpy().tolist(),
        'v': v.numpy().tolist(),
        'hv': hv.numpy().tolist(),
        'topEigenvalues': eig[:5].tolist(),
        'bottomEigenvalue': float(eig[-1]),
        'logits': model(xd).detach().numpy().tolist(),
    }


def write(name, model, x, y, compressed):
    model.eval()
    path = os.path.join(OUT, name)
    torch.onnx.export(model, torch.from_numpy(x[:1]), path + '.onnx', input_names=['input'], output_names=['logits'],
                      opset_version=13, training=torch.onnx.TrainingMode.PRESERVE,
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}})
    (np.savez_compressed if compressed else np.savez)(path + '.npz', x=x, y=y)
    ref = reference(model, x, y)
    with open(path + '.ref.json', 'w') as f:
        json.dump(ref, f)
    print(name, ref['numParams'], 'params, loss', ref['loss'], 'top eigenvalues', ref['topEigenvalues'][:3])


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    mlp = Mlp()
    x = rng.standard_normal((48, 4)).astype(np.float32)
    y = rng.integers(0, 3, 48).astype(np.int64)
    write('mlp', mlp, x, y, compressed=False)

    torch.manual_seed(1)
    net = ConvNet()
    with torch.no_grad():  # non-trivial running statistics, as after training
        net.bn1.running_mean.copy_(torch.tensor([0.1, -0.2, 0.05, 0.3]))
        net.bn1.running_var.copy_(torch.tensor([0.8, 1.5, 0.6, 1.2]))
        net.bn1.weight.copy_(torch.tensor([1.1, 0.9, 1.3, 0.7]))
        net.bn1.bias.copy_(torch.tensor([0.05, -0.1, 0.0, 0.2]))
    x = rng.standard_normal((24, 2, 6, 8)).astype(np.float32)
    y = rng.integers(0, 3, 24).astype(np.int64)
    write('convnet', net, x, y, compressed=True)

    torch.manual_seed(2)
    leaky = LeakyMlp()
    x = rng.standard_normal((40, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40).astype(np.int64)
    write('leaky', leaky, x, y, compressed=False)


if __name__ == '__main__':
    main()
