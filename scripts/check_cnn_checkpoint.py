# scripts/check_cnn_checkpoint.py CHECKPOINT — loads the checkpoint that
# scripts/train_fashion_cnn.lua wrote into PyTorch's nn.Sequential of the
# same layers (load_state_dict, strict) and prints its test accuracy on
# Fashion-MNIST, to compare with the one the dlua run printed.
# Run: /usr/bin/python3 scripts/check_cnn_checkpoint.py runs/fashion_cnn/fashion_cnn.safetensors
import gzip
import json
import struct
import sys

import torch
import torch.nn as nn

MEAN, STD = 0.2860, 0.3530
ROOT = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}


def load_file(path):
    """a safetensors file as {name: tensor} (the format: header length, JSON header, data)"""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=DTYPES[e["dtype"]]) if b > a else torch.empty(0, dtype=DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out


model = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
    nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 10))
model.load_state_dict(load_file(sys.argv[1]), strict=True)
model.eval()
X = (idx(ROOT + "/t10k-images-idx3-ubyte.gz").float() / 255).unsqueeze(1)
y = idx(ROOT + "/t10k-labels-idx1-ubyte.gz").long()
with torch.no_grad():
    pred = model((X - MEAN) / STD).argmax(1)
print("PyTorch test accuracy of the dlua checkpoint: %.4f (%d images)" % ((pred == y).float().mean().item(), len(y)))
