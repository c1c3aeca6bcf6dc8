"""Seeds for the `model` fuzz target (writes fuzz/corpus/model/ when run as
`python3 fuzz/gen_model_seeds.py fuzz/corpus/model`): a 4-byte LE length m, m bytes of model.json, then
model.safetensors, in the format privet-ml's TrainedModel::save writes (hand-made, tiny)."""
import json, struct, sys, os

def safetensors(tensors, meta):
    header = {"__metadata__": meta}
    data = b""
    for name, shape, values in tensors:
        b = b"".join(struct.pack("<f", v) for v in values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

def model(arch, features, labels, tensors):
    input_dim = sum(1 if "Standardize" in f else len(f["OneHot"]["categories"]) for f in features)
    meta = {"format": "privet-model", "format_version": 1, "architecture": arch,
            "input_dim": input_dim, "num_classes": len(labels), "label": "y",
            "categorical": [f["OneHot"]["name"] for f in features if "OneHot" in f],
            "encoder": {"features": features, "label_names": labels}}
    m = json.dumps(meta, separators=(",", ":")).encode()
    w = safetensors(tensors, {"format": "privet-model", "format_version": "1"})
    return struct.pack("<I", len(m)) + m + w

def vals(n, s=0.125):
    return [((i % 7) - 3) * s for i in range(n)]

std = lambda n, mean=0.5, sd=2.0: {"Standardize": {"name": n, "mean": mean, "std": sd}}
seeds = {
    # logreg, 2 classes (one sigmoid output), a numeric and a one-hot column: input width 3
    "logreg_2": model({"kind": "logreg"}, [std("x"), {"OneHot": {"name": "c", "categories": ["a", "b"]}}],
                      ["0", "1"], [("linear.bias", [1], vals(1)), ("linear.weight", [1, 3], vals(3))]),
    # MLP [2] (ReLU), 3 classes (softmax)
    "mlp_relu_3": model({"kind": "mlp", "hidden": [2]}, [std("x"), std("z")], ["a", "b", "c"],
                        [("fc0.weight", [2, 2], vals(4)), ("fc0.bias", [2], vals(2)),
                         ("fc1.weight", [3, 2], vals(6)), ("fc1.bias", [3], vals(3))]),
    # MLP [2, 2] with the square activation, 2 classes
    "mlp_square_2": model({"kind": "mlp", "hidden": [2, 2], "activation": "square"}, [std("x")], ["no", "yes"],
                          [("fc0.weight", [2, 1], vals(2)), ("fc0.bias", [2], vals(2)),
                           ("fc1.weight", [2, 2], vals(4)), ("fc1.bias", [2], vals(2)),
                           ("fc2.weight", [1, 2], vals(2)), ("fc2.bias", [1], vals(1))]),
    # CNN: 8x8 images (64 features), 10 classes
    "cnn_10": model({"kind": "cnn"}, [std(f"p{i}", 4.0, 6.0) for i in range(64)], [str(d) for d in range(10)],
                    [("conv1.weight", [16, 1, 3, 3], vals(144)), ("conv1.bias", [16], vals(16)),
                     ("conv2.weight", [32, 16, 3, 3], vals(4608)), ("conv2.bias", [32], vals(32)),
                     ("fc.weight", [10, 128], vals(1280)), ("fc.bias", [10], vals(10))]),
}
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for name, b in seeds.items():
    open(os.path.join(out, name), "wb").write(b)
    print(name, len(b))
