"""Model files read without running code: safetensors, and PyTorch zip files whose pickles are
checked opcode by opcode before any tensor is built."""
from __future__ import annotations

import io
import json
import pickletools
import re
import struct
import warnings
import zipfile
from typing import Any, Mapping, Sequence

import torch

from ..model import config as _limits  # read at call time: a limit set on the module holds
from ..errors import ModelFileError
from ..model.config import short_message


def canonical_safetensors(raw: bytes) -> bytes:
    """Rewrite the header with sorted keys so the same model always gives the same bytes.

    (safetensors writes its metadata map in an arbitrary order.) Tensor offsets are relative to
    the data section, so only the header changes; it is padded to 8 bytes like the original.
    """
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + raw[8 + n:]


# ----------------------------------------------------------------------------- file reading
def sniff_model(data: bytes) -> str:
    """Decide the format from the content: 'safetensors', 'torchzip', 'pickle' or 'unknown'."""
    if data[:4] == b"PK\x03\x04":
        return "torchzip"
    if len(data) >= 10:
        (n,) = struct.unpack("<Q", data[:8])
        if 2 <= n <= len(data) - 8 and data[8:9] == b"{":
            return "safetensors"
    if data[:1] == b"\x80" or data[:1] in (b"(", b"}", b"]"):
        return "pickle"
    return "unknown"


def read_safetensors(data: bytes, label: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors.torch import load as st_load

    (n,) = struct.unpack("<Q", data[:8])                  # the header's length, read first
    if n > _limits.MAX_HEADER_BYTES:
        raise ModelFileError(f"{label} has a settings header of {n / 2**20:.0f} MB, far more than a model needs "
                             f"(rnnviz reads at most {_limits.MAX_HEADER_BYTES // 2**20} MB), so it was not read; "
                             f"re-save the model with rv.save_model.")
    if n > len(data) - 8:
        raise ModelFileError(f"{label} is cut short (its header is incomplete); upload it again.")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not an object")
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise ValueError("metadata is not an object of strings")
        ok = len(header) <= _MAX_TENSORS + 1
    except Exception:  # JSON errors, unicode errors, deep nesting
        ok = None
    if ok is False:
        raise ModelFileError(f"{label} holds more than {_MAX_TENSORS:,} weight arrays, far more than a "
                             f"recurrent model has; re-save the model with rv.save_model.")
    try:
        if ok is None:
            raise ValueError("unreadable header")
        tensors = st_load(data)
    except Exception:  # SafetensorError, JSON errors, unicode errors
        raise ModelFileError(f"{label} is damaged or cut short (the safetensors data does not add up); "
                             f"upload it again or re-save it with rv.save_model.") from None
    return tensors, meta


_MAX_TENSORS = 10_000
_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def checked_weights(tensors: Mapping[str, torch.Tensor], label: str) -> dict[str, torch.Tensor]:
    """Refuse weights rnnviz cannot use safely, before any module is built; return them as float32.

    Refused with a sentence: more than ``_MAX_TENSORS`` arrays or ``_limits.MAX_PARAMETERS`` numbers,
    an empty array (a dimension of 0), whole-number or other non-float dtypes (int8, uint8,
    bool, quantised, complex: reading them as floats would give wrong numbers, e.g. a
    normalisation divisor of 0), and values that are NaN or infinite once read as float32.
    """
    if len(tensors) > _MAX_TENSORS:
        raise ModelFileError(f"{label} holds more than {_MAX_TENSORS:,} weight arrays, far more than a "
                             f"recurrent model has; re-save the model with rv.save_model.")
    total = 0
    for k, v in tensors.items():
        if v.numel() == 0:
            raise ModelFileError(f"{label} holds an empty weight array ('{short_message(k, 60)}' of shape "
                                 f"{list(v.shape)}), which no trained model has; re-save the model with rv.save_model.")
        if v.dtype not in _FLOAT_DTYPES:
            raise ModelFileError(
                f"{label} stores its weights as {str(v.dtype).replace('torch.', '')} (for example "
                f"'{short_message(k, 60)}'), not as floating-point numbers; rnnviz reads float weights only. "
                f"Convert them with model.float() and re-save (rv.save_model, or torch.save(model.state_dict())).")
        total += v.numel()
        if total > _limits.MAX_PARAMETERS:
            raise ModelFileError(f"{label} holds more than {_limits.MAX_PARAMETERS:,} numbers, more than rnnviz accepts "
                                 f"for a model.")
    out = {}
    for k, v in tensors.items():
        f = v.detach().to(torch.float32)
        if not bool(torch.isfinite(f).all()):
            raise ModelFileError(
                f"{label} has weights that are not numbers (NaN) or are infinite, in '{short_message(k, 60)}'; "
                f"the model is damaged (often a training run that diverged), so rnnviz cannot show it. "
                f"Re-save it from a checkpoint taken before that.")
        out[k] = f
    return out


_DANGEROUS_MODULES = ("os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "importlib", "runpy",
                      "code", "pty", "ctypes", "builtins", "__builtin__", "pickle", "marshal", "types")


def _names_for_message(pkl: bytes) -> list[str]:
    """Globals a pickle names, as 'module.name', to say in a refusal what a file asked for.

    Only wording depends on this: whether a file is opened is decided by torch's own
    checkpoint inspection and ``weights_only`` loader. Used when torch's inspector cannot
    parse the stream (pickle protocol 4+). Raises ValueError when the stream is not a pickle.
    """
    names, strings = [], []
    for op, arg, _pos in pickletools.genops(pkl):
        if op.name in ("GLOBAL", "INST"):
            names.append(str(arg).replace(" ", "."))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            names.append(f"{strings[-2]}.{strings[-1]}")
        elif isinstance(arg, str) and ("UNICODE" in op.name or "STRING" in op.name):
            strings.append(str(arg))
    return names


def _refuse_unsafe(label: str, unsafe: Sequence[str]) -> None:
    """Raise the plain refusal for a checkpoint that names globals torch does not allow."""
    dangerous = any(n.split(".")[0] in _DANGEROUS_MODULES for n in unsafe)
    if any(n.startswith("torch.nn.") for n in unsafe) and not dangerous:
        raise ModelFileError(
            f"{label} holds a whole pickled model, not just its weights, and opening that would "
            f"run code. Re-save it with rv.save_model(model, 'model.safetensors'), or save the "
            f"weights with torch.save(model.state_dict(), 'model.pt').")
    raise ModelFileError(
        f"{label} asks to run code when opened ({', '.join(list(unsafe)[:3])}), so rnnviz refused it. "
        f"Only plain weights are accepted: re-save with rv.save_model.")


def _measured_zip(data: bytes, label: str, limit: int) -> zipfile.ZipFile:
    """Open a zip, refusing it unless its members' real unpacked size (measured by reading,
    not taken from the headers) and their declared sizes both stay within ``limit`` bytes."""
    too_big = ModelFileError(f"{label} unpacks to more than the {limit // 2**20} MB rnnviz accepts "
                             f"for a model; re-save the model with rv.save_model(model, 'model.safetensors').")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        raise ModelFileError(f"{label} is a damaged archive; upload it again or re-save the model "
                             f"with rv.save_model(model, 'model.safetensors').") from None
    if len(infos) > 10_000 or sum(i.file_size for i in infos) > limit:
        raise too_big
    total = 0
    try:
        for info in infos:
            got = 0
            with zf.open(info) as member:
                while chunk := member.read(1 << 20):       # 1 MB at a time: memory stays flat
                    got += len(chunk)
                    if total + got > limit:
                        raise too_big
            if got != info.file_size:                      # the index lies about this member
                raise ValueError("size mismatch")
            total += got
    except ModelFileError:
        raise
    except Exception:   # CRC or size mismatch (headers that lie), bad compression, encryption
        raise ModelFileError(f"{label} is a damaged archive (its contents do not match its index); upload it "
                             f"again or re-save the model with rv.save_model(model, 'model.safetensors').") from None
    return zf


def read_torch_zip(data: bytes, label: str) -> dict[str, torch.Tensor]:
    """Read a torch.save zip holding a state dict; refuse TorchScript and anything with code.

    The zip is measured first (:func:`_measured_zip`); torch's own checkpoint inspection
    (``torch.serialization.get_unsafe_globals_in_checkpoint``) then lists anything beyond
    tensors and plain containers, and only a clean file is read, with ``weights_only=True``.
    """
    zf = _measured_zip(data, label, _limits.MAX_MODEL_BYTES)
    names = zf.namelist()
    if any(n.split("/", 1)[-1].startswith("code/") or n.endswith("constants.pkl") for n in names):
        raise ModelFileError(
            f"{label} is a TorchScript model, which contains code, so rnnviz never loads it from a file. "
            f"Save only the weights (torch.save(model.state_dict(), 'model.pt')) or use rv.save_model.")
    pkls = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if len(pkls) != 1:
        raise ModelFileError(f"{label} is a zip archive but not a PyTorch weights file; "
                             f"re-save the model with rv.save_model(model, 'model.safetensors').")
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(data))
    except Exception:   # torch's inspector cannot parse it (e.g. pickle protocol 4+, garbage)
        try:
            unsafe = [n for n in _names_for_message(zf.read(pkls[0]))
                      if not n.startswith(("torch._utils.", "collections.OrderedDict"))
                      and not re.fullmatch(r"torch\.(\w+Storage|Size|device|dtype)", n)
                      and n not in ("builtins.set", "builtins.frozenset", "builtins.tuple", "builtins.list",
                                    "builtins.dict")]
        except Exception:
            raise ModelFileError(f"{label} holds data rnnviz cannot check is safe, so it was not opened; "
                                 f"re-save the model with rv.save_model(model, 'model.safetensors').") from None
    if unsafe:
        _refuse_unsafe(label, unsafe)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")               # torch's notes on pickle protocols
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:   # torch's own safe reader refused it (e.g. pickle protocol 4+, odd objects)
        raise ModelFileError(f"{label} could not be read as plain PyTorch weights. Re-save the model with "
                             f"rv.save_model(model, 'model.safetensors'), or with "
                             f"torch.save(model.state_dict(), 'model.pt') and default settings.") from None
    return _unwrap_state_dict(obj, label)


def _unwrap_state_dict(obj: Any, label: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model", "net", "weights"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                obj = inner
                break
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise ModelFileError(f"{label} does not hold a model's weights (a state dict of tensors); "
                         f"save them with torch.save(model.state_dict(), 'model.pt') or rv.save_model.")
