"""3DDFA_V2 (Guo et al., "Towards Fast, Accurate and Stable 3D Dense Face Alignment", ECCV 2020) in numpy.

Runs the released MobileNetV1 x0.5 regressor of ``cleardusk/3DDFA_V2`` (``weights/mb05_120x120.pth``,
config ``configs/mb05_120x120.yml``) without PyTorch, from image pixels to 68 3D landmarks:

1. **Crop** (``utils/functions.py: crop_img``): the roi box ``[sx, sy, ex, ey]`` is rounded to integers and cut
   out of the BGR image, zero-padded where it leaves the image.
2. **Resize** to 120 x 120 (``cv2.resize(..., INTER_LINEAR)``): :func:`resize_linear` re-implements OpenCV's
   8-bit bilinear resize (half-pixel centres, 11-bit fixed-point weights, no anti-aliasing) in numpy, bit for
   bit; OpenCV is not needed.
3. **Normalise** (``ToTensorGjz`` + ``NormalizeGjz(127.5, 128)``): ``(img - 127.5) / 128`` in float32, channels
   B, G, R (OpenCV order), layout (3, 120, 120).
4. **Regress** 62 parameters with ``MobileNet(widen_factor=0.5, num_classes=62)`` (``models/mobilenet_v1.py``):
   a 3x3/2 convolution, 13 depthwise-separable blocks (3x3 depthwise + 1x1 pointwise convolutions, each followed
   by batch normalisation in eval mode, ``eps = 1e-5``, and ReLU), global average pooling and a linear layer
   (checkpoint keys ``module.*``; the ``fc_param`` head is the ``fc`` layer, the extra ``fc_lm`` head is unused).
5. **De-normalise**: ``param = out * param_std + param_mean`` (float32).
6. **Reconstruct** (``TDDFA.recon_vers``, sparse): ``R = param[:12].reshape(3, 4)[:, :3]``,
   ``offset = param[:12].reshape(3, 4)[:, 3]``, ``alpha_shp = param[12:52]``, ``alpha_exp = param[52:62]``,
   ``pts = R @ (u_base + W_shp alpha_shp + W_exp alpha_exp).reshape(3, 68, order='F') + offset``.
7. **Back to the image** (``utils/tddfa_util.py: similar_transform``): ``x -= 1``, ``z -= 1``, ``y = 120 - y``,
   then ``x = x (ex - sx)/120 + sx``, ``y = y (ey - sy)/120 + sy``, ``z *= ((ex-sx) + (ey-sy))/240``,
   ``z -= min z``; float32 result ``(3, 68)`` in image pixels.

The checkpoint is read by :func:`load_torch_checkpoint`, a minimal reader of both PyTorch serialisation
formats (the legacy pre-1.6 stream this checkpoint uses, and the zip format ``*/data.pkl`` + ``*/data/<key>``)
that only reconstructs tensors, storages and ordered dicts (no other Python object is ever created).
The BFM bases are the 68-keypoint files of ``cleardusk/3DDFA`` (``c++/weights``): ``u_base.txt`` (204,),
``w_shp_base.txt`` (204, 40), ``w_exp_base.txt`` (204, 10), ``param_mean_v2.txt`` / ``param_std_v2.txt`` (62,).

Differences to the official pipeline: the network runs in numpy (float32 by default, like PyTorch's CPU
forward, but with another summation order). Checked once outside the test suite against PyTorch 2.13 (CPU) with
the official architecture and ``cv2`` 5.0 on the 16 AFLW2000-3D sample images: identical checkpoint tensors,
identical decoded pixels (Pillow vs ``cv2.imread``), identical 120 x 120 crops, landmarks within 6.1e-5 px.
"""
from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from facenb.errors import InputError

__all__ = [
    "CHECKPOINT",
    "BASE_FILES",
    "INPUT_SIZE",
    "load_torch_checkpoint",
    "load_state_dict",
    "Bases",
    "load_bases",
    "MobileNetV1",
    "read_image_bgr",
    "crop_img",
    "resize_linear",
    "normalize",
    "parse_param",
    "recon_landmarks",
    "similar_transform",
    "TDDFAv2",
    "default_model_dir",
    "SampleImage",
    "SamplesRun",
    "list_samples",
    "match_rows",
    "run_aflw2000_samples",
]

CHECKPOINT = "mb05_120x120.pth"
BASE_FILES = {
    "u_base": "u_base.txt",
    "w_shp_base": "w_shp_base.txt",
    "w_exp_base": "w_exp_base.txt",
    "param_mean": "param_mean_v2.txt",
    "param_std": "param_std_v2.txt",
}
INPUT_SIZE = 120


# ============================================================================== PyTorch checkpoint reader
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder("<")


class _Storage:
    """A storage whose bytes are filled in after unpickling (legacy format) or read lazily (zip format)."""

    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise InputError("a tensor's storage has no data", None, "the checkpoint is truncated")
        n_needed = self.offset + (1 + sum((s - 1) * st for s, st in zip(self.size, self.stride)) if all(self.size)
                                  else 0)
        if n_needed > data.size:
            raise InputError("a tensor reaches past the end of its storage", None, "the checkpoint is corrupt")
        if not all(self.size):
            return np.zeros(self.size, dtype=data.dtype.newbyteorder("="))
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.size,
                                               strides=[s * data.itemsize for s in self.stride])
        return np.array(view, dtype=data.dtype.newbyteorder("="), copy=True, order="C")


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_ignored):
    return data


class _Unpickler(pickle.Unpickler):
    """Unpickler that only knows the few globals a state-dict checkpoint needs."""

    _allowed = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file, storages: dict, load_zip_record=None):
        super().__init__(file)
        self._storages = storages
        self._load_zip_record = load_zip_record

    def find_class(self, module: str, name: str):
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"unsupported object {module}.{name} in checkpoint")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        view = pid[5] if len(pid) > 5 else None
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        if view is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if key not in self._storages:
            st = _Storage(storage_type.dtype, numel)
            if self._load_zip_record is not None:
                raw = self._load_zip_record(key)
                if len(raw) != numel * st.dtype.itemsize:
                    raise pickle.UnpicklingError(f"storage {key}: {len(raw)} bytes for {numel} elements")
                st.data = np.frombuffer(raw, dtype=st.dtype)
            self._storages[key] = st
        return self._storages[key]


def _tensors_to_numpy(obj):
    if isinstance(obj, _TensorRef):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return type(obj)((k, _tensors_to_numpy(v)) for k, v in obj.items()) if isinstance(obj, OrderedDict) \
            else {k: _tensors_to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_tensors_to_numpy(v) for v in obj)
    return obj


def load_torch_checkpoint(path: str | Path) -> Any:
    """Read a PyTorch ``torch.save`` file without torch; tensors come back as numpy arrays.

    Supports the zip format (torch >= 1.6: ``<name>/data.pkl`` + ``<name>/data/<key>`` raw little-endian
    storages) and the legacy stream (magic number, protocol version, system info, the object pickle, the list of
    storage keys, then per storage an int64 element count and its raw bytes). Only ordered dicts, tensors and
    plain Python containers/scalars are reconstructed; anything else raises :class:`InputError`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("checkpoint file not found", path, "run 'facenb data fetch tddfa_v2' or give the .pth path")
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        return _load_legacy(path)
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, KeyError, zipfile.BadZipFile) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"not a readable PyTorch checkpoint ({exc})", path,
                         "give the original mb05_120x120.pth of cleardusk/3DDFA_V2") from None


def _load_zip(path: Path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("data.pkl")]
        if not pkl:
            raise pickle.UnpicklingError("zip checkpoint without data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        storages: dict = {}
        obj = _Unpickler(io.BytesIO(z.read(pkl[0])), storages, lambda key: z.read(f"{prefix}data/{key}")).load()
    return _tensors_to_numpy(obj)


def _load_legacy(path: Path):
    with open(path, "rb") as f:
        magic = pickle.load(f)
        if magic != _LEGACY_MAGIC:
            raise pickle.UnpicklingError("wrong magic number (not a torch.save file)")
        protocol = pickle.load(f)
        if protocol != 1001:
            raise pickle.UnpicklingError(f"unsupported legacy protocol {protocol}")
        sys_info = pickle.load(f)
        if not sys_info.get("little_endian", True):
            raise pickle.UnpicklingError("big-endian checkpoints are not supported")
        storages: dict = {}
        obj = _Unpickler(f, storages).load()
        keys = pickle.load(f)
        for key in keys:
            st = storages[str(key)]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != st.numel:
                raise pickle.UnpicklingError(f"storage {key}: {numel} elements on disk, {st.numel} expected")
            raw = f.read(numel * st.dtype.itemsize)
            if len(raw) != numel * st.dtype.itemsize:
                raise EOFError(f"storage {key} is truncated")
            st.data = np.frombuffer(raw, dtype=st.dtype)
    return _tensors_to_numpy(obj)


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The 3DDFA_V2 ``state_dict`` as the official ``load_model`` maps it: ``module.`` stripped, ``fc_param.*``
    renamed ``fc.*`` (``fc_lm.*`` kept under its own name; the 62-parameter model does not use it)."""
    ckpt = load_torch_checkpoint(path)
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict):
        raise InputError("checkpoint holds no state_dict", path, "give the original mb05_120x120.pth")
    out: dict[str, np.ndarray] = {}
    for k, v in sd.items():
        kc = k.replace("module.", "")
        if kc in ("fc_param.weight", "fc_param.bias"):
            kc = kc.replace("_param", "")
        out[kc] = np.asarray(v)
    return out


# ====================================================================================== BFM bases, model
@dataclass(frozen=True)
class Bases:
    """68-keypoint BFM bases and parameter whitening of 3DDFA (float32, as ``BFMModel`` casts them).

    Attributes
    ----------
    u_base : (204, 1)  mean shape, interleaved x, y, z per keypoint
    w_shp_base : (204, 40)  shape basis
    w_exp_base : (204, 10)  expression basis
    param_mean, param_std : (62,)  de-normalisation of the network output
    """

    u_base: np.ndarray
    w_shp_base: np.ndarray
    w_exp_base: np.ndarray
    param_mean: np.ndarray
    param_std: np.ndarray


def default_model_dir() -> Path:
    """Folder of the weights and bases: ``facenb.data.require('tddfa_v2')`` (cache or ``$FACENB_DATA_MIRROR``)."""
    from facenb import data

    return data.require("tddfa_v2")


def load_bases(folder: str | Path) -> Bases:
    """Read the five text files of :data:`BASE_FILES` from ``folder``."""
    folder = Path(folder)
    shapes = {"u_base": (204,), "w_shp_base": (204, 40), "w_exp_base": (204, 10), "param_mean": (62,),
              "param_std": (62,)}
    arrays = {}
    for key, name in BASE_FILES.items():
        p = folder / name
        if not p.is_file():
            raise InputError("3DDFA base file not found", p, "run 'facenb data fetch tddfa_v2'")
        try:
            a = np.loadtxt(p, dtype=np.float64)
        except ValueError as exc:
            raise InputError(f"cannot parse numbers ({exc})", p, "use the original file") from None
        if a.shape != shapes[key] or not np.isfinite(a).all():
            raise InputError(f"expected {shapes[key]} finite numbers, got shape {a.shape}", p, "use the original file")
        arrays[key] = a.astype(np.float32)
    arrays["u_base"] = arrays["u_base"].reshape(-1, 1)
    return Bases(**arrays)


_BLOCKS = (  # (name, stride) of the 13 depthwise-separable blocks of models/mobilenet_v1.py
    ("dw2_1", 1), ("dw2_2", 2), ("dw3_1", 1), ("dw3_2", 2), ("dw4_1", 1), ("dw4_2", 2), ("dw5_1", 1),
    ("dw5_2", 1), ("dw5_3", 1), ("dw5_4", 1), ("dw5_5", 1), ("dw5_6", 2), ("dw6", 1),
)
_BN_EPS = 1e-5


def _pad1(x: np.ndarray) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))


def _out_size(n: int, stride: int) -> int:
    return (n + 2 - 3) // stride + 1


class MobileNetV1:
    """``MobileNet(widen_factor, num_classes=62)`` of 3DDFA_V2 in eval mode (batch norm folded into scale/shift).

    Parameters
    ----------
    state_dict : mapping
        Weights as :func:`load_state_dict` returns them.
    dtype : numpy dtype
        Computation dtype (float32 like PyTorch's CPU forward; float64 for a reference).
    """

    def __init__(self, state_dict: Mapping[str, np.ndarray], dtype=np.float32):
        self.dtype = np.dtype(dtype)
        try:
            self.conv1 = np.asarray(state_dict["conv1.weight"], self.dtype)
            self.bn1 = self._bn(state_dict, "bn1")
            self.blocks = []
            for name, stride in _BLOCKS:
                self.blocks.append((
                    stride,
                    np.asarray(state_dict[f"{name}.conv_dw.weight"], self.dtype)[:, 0],  # (C, 3, 3)
                    self._bn(state_dict, f"{name}.bn_dw"),
                    np.asarray(state_dict[f"{name}.conv_sep.weight"], self.dtype)[:, :, 0, 0],  # (O, C)
                    self._bn(state_dict, f"{name}.bn_sep"),
                ))
            self.fc_w = np.asarray(state_dict["fc.weight"], self.dtype)
            self.fc_b = np.asarray(state_dict["fc.bias"], self.dtype)
        except KeyError as exc:
            raise InputError(f"checkpoint lacks the weight {exc.args[0]!r}", None,
                             "give a 3DDFA_V2 MobileNetV1 checkpoint (mb05_120x120.pth or mb1_120x120.pth)") from None
        c = self.conv1.shape[0]
        for stride, dw, _, sep, _ in self.blocks:
            if dw.shape != (c, 3, 3) or sep.shape[1] != c:
                raise InputError("checkpoint weights do not form a MobileNetV1", None, "give a 3DDFA_V2 checkpoint")
            c = sep.shape[0]
        if self.fc_w.shape[1] != c:
            raise InputError("checkpoint fc layer does not match the backbone", None, "give a 3DDFA_V2 checkpoint")

    def _bn(self, sd, prefix: str) -> tuple[np.ndarray, np.ndarray]:
        w, b = (np.asarray(sd[f"{prefix}.{k}"], np.float64) for k in ("weight", "bias"))
        mean, var = (np.asarray(sd[f"{prefix}.{k}"], np.float64) for k in ("running_mean", "running_var"))
        scale = w / np.sqrt(var + _BN_EPS)
        return scale.astype(self.dtype), (b - mean * scale).astype(self.dtype)

    @property
    def num_outputs(self) -> int:
        return self.fc_w.shape[0]

    @staticmethod
    def _bn_relu(x: np.ndarray, bn) -> np.ndarray:
        scale, shift = bn
        x = x * scale[None, :, None, None] + shift[None, :, None, None]
        return np.maximum(x, 0, out=x)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Forward pass.

        Parameters
        ----------
        x : (n, 3, H, W) normalised input (120 x 120 for the released weights)

        Returns
        -------
        (n, 62) network output (normalised parameters)
        """
        x = np.asarray(x, self.dtype)
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"network input must be (n, 3, H, W), got {x.shape}", None, "normalise 120x120 crops")
        n, _, h, w = x.shape
        # conv1: 3x3, stride 2, pad 1
        ho, wo = _out_size(h, 2), _out_size(w, 2)
        win = np.lib.stride_tricks.sliding_window_view(_pad1(x), (3, 3), axis=(2, 3))[:, :, ::2, ::2][:, :, :ho, :wo]
        y = np.einsum("nchwij,ocij->nohw", win, self.conv1, optimize=True)
        y = self._bn_relu(np.ascontiguousarray(y, self.dtype), self.bn1)
        for stride, dw, bn_dw, sep, bn_sep in self.blocks:
            c, h, w = y.shape[1:]
            ho, wo = _out_size(h, stride), _out_size(w, stride)
            yp = _pad1(y)
            acc = np.zeros((n, c, ho, wo), self.dtype)
            for i in range(3):
                for j in range(3):
                    acc += dw[None, :, i, j, None, None] * yp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
            acc = self._bn_relu(acc, bn_dw)
            y = np.matmul(sep[None], acc.reshape(n, c, ho * wo)).reshape(n, sep.shape[0], ho, wo)
            y = self._bn_relu(y, bn_sep)
        pooled = y.mean(axis=(2, 3), dtype=self.dtype)
        return pooled @ self.fc_w.T + self.fc_b


# ============================================================================================ image steps
def read_image_bgr(path: str | Path) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` uint8 in B, G, R order (what ``cv2.imread`` returns), with Pillow."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise InputError("image file not found", path, "check the path")
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files
        raise InputError(f"cannot decode the image ({type(exc).__name__})", path, "give a JPEG/PNG file") from None
    return np.ascontiguousarray(rgb[:, :, ::-1])


def crop_img(img: np.ndarray, roi_box: Sequence[float]) -> np.ndarray:
    """``crop_img`` of 3DDFA_V2: cut ``[sx, sy, ex, ey]`` (rounded to integers) out of ``img``, zero-padded.

    Returns
    -------
    (ey - sy, ex - sx[, 3]) uint8
    """
    img = np.asarray(img)
    h, w = img.shape[:2]
    sx, sy, ex, ey = (int(round(float(v))) for v in roi_box)
    dh, dw = ey - sy, ex - sx
    if dh <= 0 or dw <= 0:
        raise InputError(f"roi box {list(roi_box)} is empty", None, "give [sx, sy, ex, ey] with ex > sx, ey > sy")
    res = np.zeros((dh, dw) + img.shape[2:], dtype=np.uint8)
    dsx, sx = (-sx, 0) if sx < 0 else (0, sx)
    dex, ex = (dw - (ex - w), w) if ex > w else (dw, ex)
    dsy, sy = (-sy, 0) if sy < 0 else (0, sy)
    dey, ey = (dh - (ey - h), h) if ey > h else (dh, ey)
    if dex > dsx and dey > dsy:
        res[dsy:dey, dsx:dex] = img[sy:ey, sx:ex]
    return res


_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS


def _linear_taps(src: int, dst: int, clamp_weights: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source index pairs and fixed-point weights of OpenCV's INTER_LINEAR along one axis.

    OpenCV clamps the *weights* at the borders only horizontally (``fx = 0`` where the source index leaves the
    image); vertically it keeps the weights and clips the two source rows into the image.
    """
    scale = 1.0 / (dst / src)  # OpenCV: scale = 1 / inv_scale, inv_scale = dst / src (double)
    d = np.arange(dst, dtype=np.float64)
    f = ((d + 0.5) * scale - 0.5).astype(np.float32)  # (float)((dx + 0.5) * scale - 0.5)
    s = np.floor(f).astype(np.int64)
    f = (f - s.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        lo = s < 0
        f = np.where(lo, np.float32(0), f)
        s = np.where(lo, 0, s)
        hi = s >= src - 1
        f = np.where(hi, np.float32(0), f)
        s = np.where(hi, src - 1, s)
    # saturate_cast<short>(w * 2048): round half to even (cvRound) of the float32 product
    a1 = np.rint((f * np.float32(_COEF_SCALE)).astype(np.float32)).astype(np.int64)
    a0 = np.rint(((np.float32(1) - f) * np.float32(_COEF_SCALE)).astype(np.float32)).astype(np.int64)
    taps = np.clip(np.stack([s, s + 1]), 0, src - 1)
    return taps, a0, a1


def resize_linear(img: np.ndarray, size: int | tuple[int, int] = INPUT_SIZE) -> np.ndarray:
    """``cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)`` for uint8 images, in numpy.

    OpenCV's 8-bit bilinear resize: source coordinate ``(d + 0.5) * src/dst - 0.5``, weights quantised to 11
    bits (``round(w * 2048)``); a horizontal pass in integers ``r = a0 S[x0] + a1 S[x1]``; a vertical pass as
    OpenCV's SIMD kernel (``VResizeLinearVec_32s8u``, used by its x86 and ARM builds) evaluates it:
    ``((((r0 >> 4) b0) >> 16) + (((r1 >> 4) b1) >> 16) + 2) >> 2``, saturated to 0..255. No anti-aliasing when
    shrinking (as OpenCV). Bit-identical to ``cv2.resize`` of opencv-python-headless 5.0 on random images of
    100..500 px and on the 16 AFLW2000-3D crops (checked outside the test suite; OpenCV is not a dependency).

    Parameters
    ----------
    img : (H, W[, C]) uint8
    size : int or (width, height)

    Returns
    -------
    (height, width[, C]) uint8
    """
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim not in (2, 3):
        raise InputError(f"resize_linear needs an (H, W[, C]) uint8 image, got {img.shape} {img.dtype}", None,
                         "convert the image to uint8")
    width, height = (size, size) if isinstance(size, int) else size
    h, w = img.shape[:2]
    sx, ax0, ax1 = _linear_taps(w, width, clamp_weights=True)
    sy, by0, by1 = _linear_taps(h, height, clamp_weights=False)
    src = img.astype(np.int64)
    ch = (None,) * (img.ndim - 2)
    rows = src[:, sx[0]] * ax0[(slice(None),) + ch] + src[:, sx[1]] * ax1[(slice(None),) + ch]  # (H, width[, C])
    r0, r1 = rows[sy[0]] >> 4, rows[sy[1]] >> 4
    bsel = (slice(None), None) + ch
    out = (((r0 * by0[bsel]) >> 16) + ((r1 * by1[bsel]) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


def normalize(crop: np.ndarray) -> np.ndarray:
    """``NormalizeGjz(127.5, 128)(ToTensorGjz(crop))``: ``(H, W, 3)`` uint8 -> ``(3, H, W)`` float32
    ``(x - 127.5) / 128``."""
    t = np.asarray(crop).transpose(2, 0, 1).astype(np.float32)
    return (t - np.float32(127.5)) / np.float32(128)


def parse_param(param: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``_parse_param``: ``R (3, 3)``, ``offset (3, 1)``, ``alpha_shp (40, 1)``, ``alpha_exp (10, 1)``."""
    param = np.asarray(param)
    if param.shape != (62,):
        raise InputError(f"3DMM parameters must have shape (62,), got {param.shape}", None, "give 12 + 40 + 10 values")
    r_ = param[:12].reshape(3, -1)
    return r_[:, :3], r_[:, -1].reshape(3, 1), param[12:52].reshape(-1, 1), param[52:].reshape(-1, 1)


def similar_transform(pts3d: np.ndarray, roi_box: Sequence[float], size: int = INPUT_SIZE) -> np.ndarray:
    """``similar_transform`` of 3DDFA_V2: 120 x 120 model frame -> image pixels (returns a new float32 array)."""
    pts = np.array(pts3d, copy=True)
    pts[0, :] -= 1  # "for Python compatibility"
    pts[2, :] -= 1
    pts[1, :] = size - pts[1, :]
    sx, sy, ex, ey = (float(v) for v in roi_box)
    scale_x, scale_y = (ex - sx) / size, (ey - sy) / size
    pts[0, :] = pts[0, :] * scale_x + sx
    pts[1, :] = pts[1, :] * scale_y + sy
    pts[2, :] *= (scale_x + scale_y) / 2
    pts[2, :] -= np.min(pts[2, :])
    return np.array(pts, dtype=np.float32)


def recon_landmarks(param: np.ndarray, roi_box: Sequence[float], bases: Bases, size: int = INPUT_SIZE) -> np.ndarray:
    """68 3D landmarks ``(3, 68)`` float32 in image pixels from de-normalised parameters (``recon_vers``, sparse)."""
    r, offset, alpha_shp, alpha_exp = parse_param(np.asarray(param, np.float32))
    shape = bases.u_base + bases.w_shp_base @ alpha_shp + bases.w_exp_base @ alpha_exp
    pts = r @ shape.reshape(3, -1, order="F") + offset
    return similar_transform(pts, roi_box, size)


class TDDFAv2:
    """The 3DDFA_V2 sparse-landmark pipeline (crop, resize, normalise, regress, reconstruct).

    Parameters
    ----------
    model : MobileNetV1
    bases : Bases
    """

    def __init__(self, model: MobileNetV1, bases: Bases):
        if model.num_outputs != 62:
            raise InputError(f"the network predicts {model.num_outputs} values, 3DDFA_V2 needs 62", None,
                             "give the 62-parameter checkpoint")
        self.model, self.bases = model, bases

    @classmethod
    def load(cls, folder: str | Path | None = None, checkpoint: str | Path | None = None,
             dtype=np.float32) -> "TDDFAv2":
        """Load weights (``folder/mb05_120x120.pth`` unless ``checkpoint`` is given) and bases from ``folder``
        (default :func:`default_model_dir`)."""
        folder = Path(folder) if folder is not None else default_model_dir()
        ckpt = Path(checkpoint) if checkpoint is not None else folder / CHECKPOINT
        return cls(MobileNetV1(load_state_dict(ckpt), dtype=dtype), load_bases(folder))

    def crops(self, image_bgr: np.ndarray, roi_boxes: np.ndarray) -> np.ndarray:
        """``(n, 120, 120, 3)`` uint8 network inputs of one image for ``n`` roi boxes."""
        return np.stack([resize_linear(crop_img(image_bgr, b), INPUT_SIZE) for b in np.atleast_2d(roi_boxes)])

    def params(self, crops: np.ndarray) -> np.ndarray:
        """De-normalised 3DMM parameters ``(n, 62)`` float32 of ``(n, 120, 120, 3)`` uint8 BGR crops."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3) or crops.dtype != np.uint8:
            raise InputError(f"crops must be (n, 120, 120, 3) uint8, got {crops.shape} {crops.dtype}", None,
                             "use TDDFAv2.crops()")
        out = self.model(np.stack([normalize(c) for c in crops])).astype(np.float32)
        return out * self.bases.param_std + self.bases.param_mean

    def landmarks(self, params: np.ndarray, roi_boxes: np.ndarray) -> np.ndarray:
        """``(n, 3, 68)`` float32 landmarks in image pixels (x, y, z rows)."""
        return np.stack([recon_landmarks(p, b, self.bases) for p, b in zip(params, np.atleast_2d(roi_boxes))])

    def predict(self, image_bgr: np.ndarray, roi_boxes: np.ndarray) -> np.ndarray:
        """Landmarks ``(n, 3, 68)`` (image pixels) of the faces in ``roi_boxes`` (``(n, 4)`` or ``(4,)``)."""
        roi = np.atleast_2d(np.asarray(roi_boxes, dtype=np.float64))
        return self.landmarks(self.params(self.crops(image_bgr, roi)), roi)


# ================================================================================ AFLW2000-3D sample run
@dataclass(frozen=True)
class SampleImage:
    """One AFLW2000-3D image with its ``.mat`` annotation (``pt3d_68`` (3, 68), image pixels)."""

    name: str
    image_path: Path
    mat_path: Path
    pt3d_68: np.ndarray


def list_samples(samples_dir: str | Path) -> list[SampleImage]:
    """The ``imageNNNNN.jpg`` + ``imageNNNNN.mat`` pairs of ``samples_dir``, sorted by name."""
    from scipy.io import loadmat

    samples_dir = Path(samples_dir)
    if not samples_dir.is_dir():
        raise InputError("AFLW2000-3D sample folder not found", samples_dir,
                         "run 'facenb data fetch aflw2000_3d_samples'")
    out = []
    for jpg in sorted(samples_dir.glob("image*.jpg")):
        mat = jpg.with_suffix(".mat")
        if not mat.is_file():
            raise InputError("image without its .mat annotation", jpg, "fetch the matching .mat file")
        m = loadmat(mat)
        if "pt3d_68" not in m or m["pt3d_68"].shape != (3, 68):
            raise InputError("the .mat has no (3, 68) pt3d_68", mat, "use the official AFLW2000-3D .mat")
        out.append(SampleImage(jpg.stem, jpg, mat, np.asarray(m["pt3d_68"], np.float32)))
    if not out:
        raise InputError("no image*.jpg files", samples_dir, "run 'facenb data fetch aflw2000_3d_samples'")
    return out


def match_rows(samples: Sequence[SampleImage], pts68: np.ndarray) -> np.ndarray:
    """Row of every sample in the 2000-image arrays: the row whose landmarks equal the ``.mat``'s ``pt3d_68``.

    The match must be exact (max difference 0 px) and unique; anything else raises :class:`InputError`.
    """
    rows = []
    for s in samples:
        d = np.abs(pts68 - s.pt3d_68[None]).reshape(len(pts68), -1).max(axis=1)
        best = np.flatnonzero(d == 0)
        if len(best) != 1:
            raise InputError(f"{s.name}: {len(best)} rows of AFLW2000-3D.pts68.npy equal its pt3d_68", s.mat_path,
                             "use the official AFLW2000-3D .mat files and ground truth")
        rows.append(int(best[0]))
    return np.asarray(rows)


@dataclass(frozen=True)
class SamplesRun:
    """3DDFA_V2 on AFLW2000-3D images.

    Attributes
    ----------
    names : tuple of str  image names
    rows : (n,) int  rows in the 2000-image ground truth
    roi_box : (n, 4)  crop boxes used
    landmarks : (n, 3, 68) float32  predicted landmarks, image pixels
    params : (n, 62) float32  de-normalised 3DMM parameters
    crops : (n, 120, 120, 3) uint8  network inputs (BGR)
    result : facenb.benchmarks.aflw2000.NMEResult  the official NME on these images (``coords='image'``)
    """

    names: tuple[str, ...]
    rows: np.ndarray
    roi_box: np.ndarray
    landmarks: np.ndarray
    params: np.ndarray
    crops: np.ndarray
    image_paths: tuple[Path, ...]
    result: Any


def run_aflw2000_samples(
    samples_dir: str | Path | None = None,
    gt: Any = None,
    model: TDDFAv2 | None = None,
    **nme_options: str,
) -> SamplesRun:
    """Run 3DDFA_V2 on the AFLW2000-3D images of ``samples_dir`` and score them with the official NME.

    Crops come from the benchmark's roi boxes (``AFLW2000-3D_crop.roi_box.npy``), rows found with
    :func:`match_rows`; the predicted image-pixel landmarks are scored with
    :func:`facenb.benchmarks.aflw2000.evaluate` (``coords='image'``, ``indices=rows``; ``nme_options`` are passed
    on, e.g. ``annotations='reannotated'``).
    """
    from facenb.benchmarks import aflw2000

    if samples_dir is None:
        from facenb import data

        samples_dir = data.require("aflw2000_3d_samples")
    g = gt if isinstance(gt, aflw2000.GroundTruth) else aflw2000.load_ground_truth(gt)
    model = model if model is not None else TDDFAv2.load()
    samples = list_samples(samples_dir)
    rows = match_rows(samples, g.pts68)
    roi = g.roi_box[rows]
    crops, params, lms = [], [], []
    for s, box in zip(samples, roi):
        c = model.crops(read_image_bgr(s.image_path), box)
        p = model.params(c)
        crops.append(c[0])
        params.append(p[0])
        lms.append(model.landmarks(p, box)[0])
    lms_arr = np.stack(lms)
    nme_options.setdefault("coords", "image")
    result = aflw2000.evaluate(lms_arr, g, indices=rows, **nme_options)
    return SamplesRun(names=tuple(s.name for s in samples), rows=rows, roi_box=roi, landmarks=lms_arr,
                      params=np.stack(params), crops=np.stack(crops),
                      image_paths=tuple(s.image_path for s in samples), result=result)
