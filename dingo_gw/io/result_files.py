"""Reading and writing bilby result files without running code from them.

:func:`read_result_dict` reads a bilby result (``.json`` or ``.hdf5``) as checked plain data and
never instantiates a class the file names (bilby's own reader does); :func:`write_result_hdf5`
writes bilby's result dictionary in bilby's HDF5 layout, atomically and safe on a full disk.
:class:`dingo_gw.results.Result` saves and loads through these.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dingo_gw.errors import DataError, FileFormatError
from dingo_gw.io.hdf5 import to_jsonable


#: bilby JSON markers that are decoded into plain data; every other ``__marker__`` key is refused.
_DATA_MARKERS = ("__dataframe__", "__series__", "__array__", "__complex__", "__timedelta__")


def read_result_dict(filename: str | Path) -> dict:
    """The contents of a bilby result file (``.json`` or ``.hdf5``/``.h5``) as checked plain data.

    Never instantiates a class the file names (bilby's own reader does, and reads pickles):
    dataframes/series/arrays become dicts of float arrays / arrays, ``priors`` a bilby
    BBHPriorDict built through :func:`dingo_gw.prior_parser.prior_from_json`, and any other
    object marker (``__prior__`` elsewhere, ``__module__``, ``__class__``, ``__function__``,
    ``__cosmology__``, ...) is a FileFormatError naming where it was found. The top-level
    ``__module__``/``__name__`` of an hdf5 result are ignored.
    """
    filename = Path(filename)
    if not filename.is_file():
        raise FileFormatError(f"result file not found: {filename}")
    ext = filename.suffix.lower()
    try:
        if ext == ".json":
            raw = json.loads(filename.read_text(encoding="utf-8"))
        elif ext in (".hdf5", ".h5"):
            raw = _read_h5_dict(filename)
            raw.pop("__module__", None)
            raw.pop("__name__", None)
            if isinstance(raw.get("priors"), str):
                raw["priors"] = json.loads(raw["priors"])
        else:
            raise FileFormatError(f"{filename}: unknown result file type {ext!r}; expected .json or .hdf5")
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise FileFormatError(f"cannot read result {filename}: {e.__class__.__name__}: {e}") from None
    if not isinstance(raw, dict):
        raise FileFormatError(f"{filename}: a result file holds a JSON object")
    priors = raw.pop("priors", None)
    try:
        out = _decode(raw, filename, "")
    except RecursionError:
        raise FileFormatError(f"{filename}: nested too deeply for a result file") from None
    out["priors"] = _decode_priors(priors, filename) if priors else None
    return out


#: HDF5 attribute that marks how a group/dataset of a result file decodes: "list" (a group of items
#: "0".."n-1", or an array, that was a list) or "json" (a JSON string of data HDF5 cannot name).
#: bilby's reader ignores attributes, so the layout stays bilby's.
H5_TYPE_ATTR = "dingo_gw_type"


def write_result_hdf5(path: str | Path, dictionary: dict) -> None:
    """Write bilby's result dictionary (``Result._get_save_data_dictionary()`` plus ``__module__``/
    ``__name__``) to ``path`` in bilby's HDF5 result layout: dicts are groups, DataFrames groups of
    float64 column datasets (``posterior``; ``nested_samples``: the weighted samples with
    log_likelihood, log_prior, log_proposal, log_weights, weights), priors a JSON string, None
    ``"__none__"`` (leaves encoded by bilby's ``encode_for_hdf5``). Lists bilby cannot store
    (of dicts, mixed, empty) become groups ``"0".."n-1"``; they and numeric lists carry the
    attribute :data:`H5_TYPE_ATTR` so that :func:`read_result_dict` gives the lists back.
    Written through :func:`dingo_gw.io.atomic.h5_writer` (a full disk is an OSError, not a crash).
    """
    import pandas as pd

    from dingo_gw.io.atomic import h5_writer

    data = {}
    for key, value in dictionary.items():
        if isinstance(value, pd.DataFrame):  # columns as arrays (bilby goes through Python lists: same layout)
            value = {str(c): value[c].to_numpy() for c in value.columns}
        elif key == "priors" and value is not None and not isinstance(value, str):
            value = json.dumps(value._get_json_dict(), cls=_bilby_json_encoder())
        data[key] = value
    with h5_writer(path) as f:
        for key, value in data.items():
            _h5_store(f, "/", str(key), value)
        f.check()


def _bilby_json_encoder():
    from bilby.core.utils import BilbyJsonEncoder

    return BilbyJsonEncoder


def _h5_store(f, parent: str, key: str, value) -> None:
    """Store ``value`` under ``parent + key`` (see :func:`write_result_hdf5`)."""
    from bilby.core.utils import encode_for_hdf5

    name = parent + key
    if isinstance(value, dict):
        keys = [str(k) for k in value]
        if any(not k or "/" in k or k == "." for k in keys) or len(set(keys)) != len(keys):
            f[name] = json.dumps(to_jsonable(value))  # names HDF5 cannot hold
            f[name].attrs[H5_TYPE_ATTR] = "json"
            return
        group = f.create_group(name)
        for k, v in value.items():
            _h5_store(f, name + "/", str(k), v)
        del group
        return
    if isinstance(value, (list, tuple)):
        value = list(value)
        if any(isinstance(x, str) for x in value) and all(isinstance(x, str) or x is None for x in value):
            f[name] = encode_for_hdf5(key, value)  # as bilby: bytes, None as b"__none__"
            return
        arr = _numeric_array(value)
        if arr is not None:
            f[name] = arr
            f[name].attrs[H5_TYPE_ATTR] = "list"
            return
        group = f.create_group(name)
        group.attrs[H5_TYPE_ATTR] = "list"
        for i, v in enumerate(value):
            _h5_store(f, name + "/", str(i), v)
        return
    item = encode_for_hdf5(key, value)
    if isinstance(item, dict):  # a class, function or other object: never written (the reader refuses them)
        raise DataError(f"result: cannot store {name} ({type(value).__name__}) in a result file")
    f[name] = item


def _numeric_array(values: list):
    """``values`` as a rectangular numeric array (empty list: empty float array), else None."""
    if not values:
        return np.zeros(0)

    def numbers_only(x):
        if isinstance(x, (list, tuple)):
            return all(numbers_only(y) for y in x)
        return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))

    if not numbers_only(values):
        return None
    try:
        arr = np.asarray(values)
    except ValueError:  # ragged
        return None
    return arr if arr.dtype.kind in "iuf" else None


def _read_h5_dict(filename: Path) -> dict:
    """Groups -> dicts, datasets -> numpy arrays / Python scalars / str (bilby writes None as
    '__none__'); :data:`H5_TYPE_ATTR` lists and JSON strings decoded. Links to other objects or files,
    and datasets of references or compound types, are a FileFormatError: a result holds data only."""
    import h5py

    def where(obj):
        return obj.name.lstrip("/") or "top level"

    def load_dataset(item):
        kind = item.dtype.kind
        if kind == "O" and h5py.check_string_dtype(item.dtype) is None or kind not in "biufSO":
            raise FileFormatError(f"{filename}: {where(item)}: refused dataset of type {item.dtype} "
                                  "(result files hold numbers and strings only)")
        if item.is_virtual:
            raise FileFormatError(f"{filename}: {where(item)}: refused virtual dataset (it reads other files)")
        v = item[()]
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        elif isinstance(v, np.ndarray) and v.dtype.kind in "OS":
            v = [x.decode("utf-8") if isinstance(x, bytes) else x for x in v.tolist()]
            v = [None if x == "__none__" else x for x in v]
        elif isinstance(v, np.generic):
            v = v.item()
        mark = _h5_type(item)
        if mark == "list":
            v = v.tolist() if isinstance(v, np.ndarray) else v
        elif mark == "json" and isinstance(v, str):
            v = json.loads(v)
        return None if isinstance(v, str) and v == "__none__" else v

    def load(group):
        out = {}
        for k in group:
            link = group.get(k, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise FileFormatError(f"{filename}: {(group.name.rstrip('/') + '/' + k).lstrip('/')}: refused "
                                      f"{type(link).__name__} (result files hold their data themselves)")
            item = group[k]
            out[k] = load(item) if isinstance(item, h5py.Group) else load_dataset(item)
        if _h5_type(group) == "list":
            if sorted(out) != sorted(str(i) for i in range(len(out))):
                raise FileFormatError(f"{filename}: {where(group)}: malformed list group")
            return [out[str(i)] for i in range(len(out))]
        return out

    with h5py.File(filename, "r") as f:
        return load(f)


def _h5_type(obj) -> str | None:
    mark = obj.attrs.get(H5_TYPE_ATTR)
    return mark.decode("utf-8") if isinstance(mark, bytes) else mark


def _decode(obj, filename: Path, where: str):
    """Plain data from bilby-JSON data; FileFormatError for any marker that names code."""
    if isinstance(obj, list):
        return [_decode(x, filename, f"{where}[{i}]") for i, x in enumerate(obj)]
    if not isinstance(obj, dict):
        return obj
    markers = [k for k in obj if isinstance(k, str) and k.startswith("__") and k.endswith("__")]
    if not markers:
        return {k: _decode(v, filename, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    marker = next((m for m in _DATA_MARKERS if obj.get(m) is True), None)
    if marker is None:
        named = ".".join(str(obj.get(k)) for k in ("__module__", "__name__") if k in obj)
        raise FileFormatError(f"{filename}: {where or 'top level'}: refused object {sorted(markers)}"
                              f"{' naming ' + repr(named) if named else ''} (result files may hold data only)")
    try:
        if marker == "__complex__":
            return complex(float(obj["real"]), float(obj["imag"]))
        if marker == "__timedelta__":
            return float(obj["__total_seconds__"])
        content = obj["content"]
        if marker == "__dataframe__":
            if not isinstance(content, dict):
                raise ValueError("content is not an object of columns")
            return {str(k): column(v, filename, f"{where}.{k}") for k, v in content.items()}
        return column(content, filename, where)
    except (KeyError, TypeError, ValueError) as e:
        raise FileFormatError(f"{filename}: {where}: malformed {marker} ({e.__class__.__name__}: {e})") from None


def column(values, filename: Path, where: str) -> np.ndarray:
    """A 1-d float array of numbers (or a pandas-style {index: value} object)."""
    if isinstance(values, dict):
        values = list(values.values())
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise FileFormatError(f"{filename}: {where}: expected a column of numbers") from None
    if arr.ndim != 1:
        raise FileFormatError(f"{filename}: {where}: expected a column of numbers")
    return arr


def scalar(d: dict, key: str, filename: Path) -> float:
    v = d.get(key)
    if v is None:
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise FileFormatError(f"{filename}: {key} must be a number, got {repr(v)[:60]}") from None


def _decode_priors(priors, filename: Path):
    """A BBHPriorDict from bilby's JSON form of a PriorDict, through the restricted prior parser."""
    import bilby

    from dingo_gw.errors import ConfigError
    from dingo_gw.prior_parser import prior_from_json
    from dingo_gw.priors import _quiet_bilby

    if not isinstance(priors, dict):
        raise FileFormatError(f"{filename}: priors must be an object")
    if "__prior_dict__" in priors:
        cls = f"{priors.get('__module__')}.{priors.get('__name__')}"
        if cls not in _PRIOR_DICT_CLASSES:
            raise FileFormatError(f"{filename}: priors: refused prior dict class {cls!r}")
    entries = {k: v for k, v in priors.items() if k not in ("__prior_dict__", "__module__", "__name__")}
    try:
        with _quiet_bilby():
            out = {k: prior_from_json(k, v, what=f"{filename}: priors") for k, v in entries.items()}
            return bilby.gw.prior.BBHPriorDict(dictionary=out)
    except ConfigError as e:
        raise FileFormatError(str(e)) from None


#: PriorDict classes a result file may name (rebuilt as a BBHPriorDict either way).
_PRIOR_DICT_CLASSES = ("bilby.core.prior.dict.PriorDict", "bilby.core.prior.PriorDict", "bilby.gw.prior.BBHPriorDict",
                       "bilby.gw.prior.PriorDict")
