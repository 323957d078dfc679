"""3DDFA_V2 in numpy: checkpoint reader, image steps, network, and the end-to-end AFLW2000-3D run."""
from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from facenb.benchmarks import aflw2000 as A
from facenb.errors import InputError
from facenb.methods import tddfa_v2 as T


# ------------------------------------------------------------------------------------ checkpoint reader
@pytest.fixture
def model_dir(data_mirror):
    return data_mirror / "tddfa_v2"


def test_legacy_checkpoint(model_dir):
    ckpt = T.load_torch_checkpoint(model_dir / T.CHECKPOINT)
    assert set(ckpt) == {"epoch", "state_dict"} and ckpt["epoch"] == 62
    sd = T.load_state_dict(model_dir / T.CHECKPOINT)
    assert sd["conv1.weight"].shape == (16, 3, 3, 3) and sd["conv1.weight"].dtype == np.float32
    assert sd["dw6.conv_sep.weight"].shape == (512, 512, 1, 1)
    assert sd["fc.weight"].shape == (62, 512) and sd["fc.bias"].shape == (62,)
    assert sd["fc_lm.weight"].shape == (136, 512)
    assert sd["bn1.num_batches_tracked"].dtype == np.int64 and sd["bn1.num_batches_tracked"].shape == ()
    assert np.all(sd["bn1.running_var"] > 0)
    # 0.85 M parameters, as the 3DDFA_V2 readme says for MobileNet x0.5 (without the unused fc_lm head)
    n = sum(v.size for k, v in sd.items() if "running" not in k and "num_batches" not in k and "fc_lm" not in k)
    assert 0.8e6 < n < 0.9e6


def _fake_torch(monkeypatch):
    """Stand-in ``torch`` / ``torch._utils`` modules so the stdlib pickler can write torch's global names."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    storages = {}
    for name in ("FloatStorage", "LongStorage"):
        cls = type(name, (), {})
        cls.__module__ = "torch"
        setattr(torch, name, cls)
        storages[name] = cls

    def _rebuild_tensor_v2(*args):  # pragma: no cover - never called when writing
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return storages, _rebuild_tensor_v2


def _write_checkpoint(path, tensors: dict, monkeypatch, fmt: str):
    """Write ``{'state_dict': OrderedDict(tensors)}`` in torch's zip or legacy format, without torch."""
    storages, rebuild = _fake_torch(monkeypatch)

    class Ref:
        def __init__(self, key, arr):
            self.key, self.arr = key, arr

    class Tensor:
        def __init__(self, key, arr, transpose):
            base = np.array(arr.T if transpose else arr, order="C", copy=True)
            self.ref = Ref(key, base)
            strides = tuple(s // base.itemsize for s in base.strides)
            self.size, self.stride = (arr.shape, strides[::-1]) if transpose else (arr.shape, strides)

        def __reduce__(self):
            return rebuild, (self.ref, 0, self.size, self.stride, False, OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Ref):
                kind = "FloatStorage" if obj.arr.dtype == np.float32 else "LongStorage"
                return ("storage", storages[kind], obj.key, "cpu", obj.arr.size) + ((None,) if fmt == "legacy" else ())
            return None

    objs = OrderedDict((k, Tensor(str(i), v, transpose=v.ndim == 2)) for i, (k, v) in enumerate(tensors.items()))
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump({"epoch": 3, "state_dict": objs})
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", buf.getvalue())
            z.writestr("archive/version", "3\n")
            for t in objs.values():
                z.writestr(f"archive/data/{t.ref.key}", t.ref.arr.astype(t.ref.arr.dtype.newbyteorder("<")).tobytes())
    else:
        with open(path, "wb") as f:
            for head in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
                pickle.dump(head, f, protocol=2)
            f.write(buf.getvalue())
            pickle.dump([t.ref.key for t in objs.values()], f, protocol=2)
            for t in objs.values():
                f.write(struct.pack("<q", t.ref.arr.size) + t.ref.arr.tobytes())


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_checkpoint_roundtrip(tmp_path, monkeypatch, fmt):
    rng = np.random.default_rng(0)
    tensors = {"module.a.weight": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
               "module.fc_param.weight": rng.normal(size=(5, 7)).astype(np.float32),  # stored transposed
               "module.fc_param.bias": rng.normal(size=5).astype(np.float32),
               "module.bn.num_batches_tracked": np.array(12, np.int64)}
    path = tmp_path / f"m_{fmt}.pth"
    _write_checkpoint(path, tensors, monkeypatch, fmt)
    monkeypatch.delitem(sys.modules, "torch")
    monkeypatch.delitem(sys.modules, "torch._utils")
    assert zipfile.is_zipfile(path) == (fmt == "zip")
    sd = T.load_state_dict(path)
    assert list(sd) == ["a.weight", "fc.weight", "fc.bias", "bn.num_batches_tracked"]
    for (k, v), got in zip(tensors.items(), sd.values()):
        np.testing.assert_array_equal(got, v)
        assert got.dtype == v.dtype and got.flags.c_contiguous


def test_checkpoint_refuses_other_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for head in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(head, f, protocol=2)
        pickle.dump({"state_dict": Evil()}, f, protocol=2)
    with pytest.raises(InputError, match="unsupported object"):
        T.load_torch_checkpoint(path)
    (tmp_path / "junk.pth").write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="not a readable PyTorch checkpoint"):
        T.load_torch_checkpoint(tmp_path / "junk.pth")
    with pytest.raises(InputError, match="not found"):
        T.load_torch_checkpoint(tmp_path / "none.pth")


# ------------------------------------------------------------------------------------------- image steps
def test_resize_linear_pinned_to_opencv():
    """Values produced by cv2.resize(..., INTER_LINEAR) (opencv-python-headless 5.0.0) for two small images."""
    a = ((np.arange(6 * 7 * 3).reshape(6, 7, 3) * 37) % 256).astype(np.uint8)
    assert T.resize_linear(a, (3, 4))[..., 0].tolist() == [[76, 79, 82], [89, 93, 96], [103, 106, 109],
                                                          [116, 120, 123]]
    b = ((np.arange(3 * 4).reshape(3, 4) * 53 + 11) % 256).astype(np.uint8)
    assert T.resize_linear(b, (7, 5)).tolist() == [
        [11, 30, 60, 90, 121, 151, 170], [96, 78, 50, 73, 103, 133, 152], [223, 151, 34, 47, 77, 107, 126],
        [196, 179, 151, 97, 50, 81, 99], [179, 198, 228, 130, 33, 63, 82]]


def test_resize_linear_laws():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    np.testing.assert_array_equal(T.resize_linear(img, (53, 37)), img)  # same size: identity
    const = np.full((300, 250, 3), 77, np.uint8)
    np.testing.assert_array_equal(T.resize_linear(const, 120), 77)
    out = T.resize_linear(img, 120)
    assert out.shape == (120, 120, 3) and out.dtype == np.uint8
    assert img.min() <= out.min() and out.max() <= img.max()
    with pytest.raises(InputError, match="uint8"):
        T.resize_linear(img.astype(np.float32))


def test_crop_img_pads_outside():
    img = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    c = T.crop_img(img, [-2.4, 3.0, 5.0, 14.6])  # rounds to (-2, 3, 5, 15)
    assert c.shape == (12, 7, 3)
    np.testing.assert_array_equal(c[:7, 2:], img[3:10, 0:5])
    assert not c[:, :2].any() and not c[7:].any()
    with pytest.raises(InputError, match="empty"):
        T.crop_img(img, [5, 5, 5, 9])


def test_similar_transform_and_normalize():
    pts = np.array([[1.0, 61.0], [120.0, 60.0], [1.0, 11.0]], np.float32)  # (3, 2): x, y, z rows
    out = T.similar_transform(pts, [100, 200, 340, 440])  # scale 2 in x and y
    np.testing.assert_allclose(out[:2], [[100.0, 220.0], [200.0, 320.0]])
    np.testing.assert_allclose(out[2], [0.0, 20.0])
    assert out.dtype == np.float32 and pts[0, 0] == 1.0  # input untouched
    x = T.normalize(np.full((4, 4, 3), [0, 128, 255], np.uint8))
    assert x.shape == (3, 4, 4) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0, 0], [-127.5 / 128, 0.5 / 128, 127.5 / 128])


# ---------------------------------------------------------------------------------------------- network
def _naive_forward(sd, x):
    """Direct float64 loops over the official layer list (independent of MobileNetV1's vectorisation)."""
    def bn(y, p):
        s = sd[f"{p}.weight"] / np.sqrt(sd[f"{p}.running_var"] + 1e-5)
        return np.maximum((y - sd[f"{p}.running_mean"][:, None, None]) * s[:, None, None]
                          + sd[f"{p}.bias"][:, None, None], 0)

    def conv(y, w, stride, groups):
        c, h, wd = y.shape
        yp = np.pad(y, ((0, 0), (1, 1), (1, 1)))
        ho, wo = (h - 1) // stride + 1, (wd - 1) // stride + 1
        out = np.zeros((w.shape[0], ho, wo))
        for o in range(w.shape[0]):
            chans = [o] if groups > 1 else range(c)
            for i in range(ho):
                for j in range(wo):
                    win = yp[list(chans), i * stride:i * stride + 3, j * stride:j * stride + 3]
                    out[o, i, j] = np.sum(win * w[o])
        return out

    y = bn(conv(x, sd["conv1.weight"], 2, 1), "bn1")
    for name, stride in T._BLOCKS:
        y = bn(conv(y, sd[f"{name}.conv_dw.weight"], stride, y.shape[0]), f"{name}.bn_dw")
        y = bn(np.einsum("oc,chw->ohw", sd[f"{name}.conv_sep.weight"][:, :, 0, 0], y), f"{name}.bn_sep")
    return sd["fc.weight"] @ y.mean(axis=(1, 2)) + sd["fc.bias"]


def test_mobilenet_matches_naive_loops():
    rng = np.random.default_rng(4)
    c = 3
    sd = {"conv1.weight": rng.normal(size=(c, 3, 3, 3)) * 0.5}

    def add_bn(p, n):
        sd.update({f"{p}.weight": rng.uniform(0.5, 1.5, n), f"{p}.bias": rng.normal(size=n) * 0.1,
                   f"{p}.running_mean": rng.normal(size=n) * 0.1, f"{p}.running_var": rng.uniform(0.5, 2, n)})

    add_bn("bn1", c)
    for name, _ in T._BLOCKS:
        sd[f"{name}.conv_dw.weight"] = rng.normal(size=(c, 1, 3, 3)) * 0.5
        add_bn(f"{name}.bn_dw", c)
        sd[f"{name}.conv_sep.weight"] = rng.normal(size=(c, c, 1, 1)) * 0.7
        add_bn(f"{name}.bn_sep", c)
    sd["fc.weight"], sd["fc.bias"] = rng.normal(size=(62, c)), rng.normal(size=62)
    x = rng.normal(size=(2, 3, 33, 40))
    got = T.MobileNetV1(sd, dtype=np.float64)(x)
    want = np.stack([_naive_forward(sd, xi) for xi in x])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    with pytest.raises(InputError, match="lacks the weight"):
        T.MobileNetV1({k: v for k, v in sd.items() if k != "dw6.bn_sep.bias"})


# ---------------------------------------------------------------------------------- end to end on images
@pytest.fixture(scope="module")
def samples_run():
    from conftest import mirror_root, need

    root = need(mirror_root(), "public data mirror")
    gt = A.load_ground_truth(root / "aflw2000_3d")
    model = T.TDDFAv2.load(root / "tddfa_v2")
    return T.run_aflw2000_samples(root / "aflw2000_3d_samples", gt, model), gt


def test_rows_match_readme(samples_run):
    run, gt = samples_run
    assert len(run.names) == 16
    assert dict(zip(run.names, run.rows.tolist()))["image00050"] == 28  # data README: image00050 is row 28
    assert list(run.rows) == sorted(run.rows)  # rows follow the sorted image names
    np.testing.assert_array_equal(run.roi_box, gt.roi_box[run.rows])


def test_landmarks_pinned_image00050(samples_run):
    """Landmarks of image00050 (computed by this implementation; 6e-5 px from PyTorch 2.13 + cv2 when checked)."""
    run, _ = samples_run
    lm = run.landmarks[run.names.index("image00050")]
    idx = [0, 8, 16, 19, 24, 30, 36, 39, 42, 45, 48, 54, 62]
    want = np.array([
        [128.6426, 215.6024, 330.7397, 176.8318, 283.1779, 223.2224, 167.5224, 200.8052, 254.2673, 288.7846,
         180.7802, 259.6651, 220.1255],
        [206.6835, 376.1208, 223.3883, 178.6323, 186.8770, 267.5352, 208.1421, 212.3523, 216.7391, 218.3351,
         304.7091, 311.6006, 307.0056],
        [0.0000, 95.4653, 4.4653, 122.0910, 124.3667, 161.0144, 99.8965, 109.2120, 110.0695, 102.6468,
         100.8099, 102.2762, 126.3582]])
    assert lm.shape == (3, 68) and lm.dtype == np.float32
    np.testing.assert_allclose(lm[:, idx], want, atol=2e-3)


def test_nme_on_16_images(samples_run):
    run, gt = samples_run
    r = run.result
    assert r.bin_count == (10, 4, 2)
    assert np.all(r.per_image < 0.10) and np.all(r.per_image > 0.005)  # sane: every image under 10 %
    assert r.mean == pytest.approx(3.6707, abs=2e-3)  # balanced mean over the 16 images (not the 2000)
    # scoring the image-pixel landmarks equals scoring them mapped back into the 120x120 crops
    s = (run.roi_box[:, 2:] - run.roi_box[:, :2]).astype(np.float64) / 120
    crop = (run.landmarks[:, :2].astype(np.float64) - run.roi_box[:, :2, None]) / s[:, :, None]
    rc = A.evaluate(crop, gt, indices=run.rows, arithmetic="float64")
    np.testing.assert_allclose(rc.per_image, r.per_image, rtol=1e-5)
