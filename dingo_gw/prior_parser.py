"""A restricted parser for bilby prior strings: files never run code.

bilby turns prior strings into objects with ``eval()``, so a prior string in a network file,
checkpoint, proposal file, config or ``.prior`` file could run any code. This module parses
them with :mod:`ast` instead and builds the prior by calling an allow-listed class directly.

Accepted (anything else is a :class:`~dingo_gw.errors.ConfigError` naming the key):

* a number (``"3.5"``, ``"-1e-3"``): a DeltaFunction at that value;
* ``Class(arg, ..., keyword=arg, ...)`` where ``Class`` is in :data:`CORE_CLASSES` or
  :data:`GW_CLASSES`, written bare or as ``bilby.core.prior.Class`` (core classes) or
  ``bilby.gw.prior.Class`` (either kind, as bilby's own module re-exports the core ones);
* arguments: numbers, optionally signed and combined with ``+ - * /`` (``2 * np.pi``), the
  constants ``pi``, ``inf``, ``nan`` (bare or as ``np.``/``numpy.``/``math.`` attributes),
  ``None``, ``True``, ``False``; strings only for ``name``, ``latex_label`` and ``unit``;
  ``boundary`` one of None, 'periodic', 'reflective'; ``cosmology`` None or the name of an
  astropy built-in cosmology (:data:`COSMOLOGIES`); ``a_prior``/``z_prior`` (AlignedSpin) a
  call of a core class (one level deep).

Names, other attributes, subscripts, nested calls elsewhere, lambdas, comprehensions, f-strings
etc. are refused before anything is called. Positional arguments are bound to the class
signature, so their meaning (and check) is the same as if they had been given by keyword.
"""

from __future__ import annotations

import ast
import inspect
import math
from pathlib import Path

from dingo_gw.errors import ConfigError

#: bilby.core.prior classes with only numeric (and label) arguments.
CORE_CLASSES = (
    "Uniform", "LogUniform", "SymmetricLogUniform", "PowerLaw", "Sine", "Cosine", "Gaussian", "Normal",
    "TruncatedGaussian", "TruncatedNormal", "HalfGaussian", "HalfNormal", "LogNormal", "LogGaussian",
    "Exponential", "StudentT", "Beta", "Logistic", "Cauchy", "Lorentzian", "Gamma", "ChiSquared", "Triangular",
    "DeltaFunction", "Constraint",
)

#: bilby.gw.prior classes.
GW_CLASSES = (
    "UniformInComponentsChirpMass", "UniformInComponentsMassRatio", "UniformSourceFrame",
    "UniformComovingVolume", "AlignedSpin",
)

#: Named cosmologies accepted for ``cosmology`` (astropy's built-in realizations).
COSMOLOGIES = ("WMAP1", "WMAP3", "WMAP5", "WMAP7", "WMAP9", "Planck13", "Planck15", "Planck18")

#: Named numeric constants (bare or after one of CONSTANT_MODULES).
CONSTANTS = {"pi": math.pi, "inf": math.inf, "nan": math.nan}
CONSTANT_MODULES = ("np", "numpy", "math")

#: Arguments that may be strings (or None).
LABEL_ARGUMENTS = ("name", "latex_label", "unit")
BOUNDARIES = (None, "periodic", "reflective")
#: Arguments that take a nested prior (AlignedSpin).
PRIOR_ARGUMENTS = ("a_prior", "z_prior")

#: Longest prior string parsed (bilby reprs are ~200 characters).
MAX_LENGTH = 2000

_BINOPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
           ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}


class _Refused(Exception):
    """What was refused (message without the key)."""


def parse_prior(key: str, value: str, what: str = "prior"):
    """The bilby prior that the string ``value`` describes, built without ``eval``.

    ``key`` names the parameter (errors say ``<what>.<key>: ...``; a prior without a name gets
    ``key``). Raises ConfigError for anything outside the accepted grammar (module docstring).
    """
    if not isinstance(value, str):
        raise ConfigError(f"{what}.{key}: expected a bilby prior string or a number, got {type(value).__name__}")
    text = value.strip()
    try:
        if len(text) > MAX_LENGTH:
            raise _Refused(f"longer than {MAX_LENGTH} characters")
        try:
            tree = ast.parse(text, mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
            raise _Refused(f"not a valid expression ({e.__class__.__name__})") from None
        if isinstance(tree, ast.Call):
            prior = _call(tree, depth=0)
        else:
            try:
                peak = float(_number(tree))
            except OverflowError:
                raise _Refused("number too large") from None
            prior = _class("DeltaFunction")(peak=peak)
    except _Refused as e:
        raise ConfigError(f"{what}.{key}: invalid bilby prior {_short(value)}: {' '.join(str(e).split())}") from None
    if getattr(prior, "name", None) in (None, ""):
        prior.name = key
    return prior


def prior_from_json(key: str, obj, what: str = "priors"):
    """The bilby prior of a bilby-JSON object ``{"__prior__": true, "__module__", "__name__", "kwargs"}``.

    The form bilby writes priors in result files. The class must be an allowed one (``__module__``
    a bilby.core.prior or bilby.gw.prior module) and the kwargs pass the same checks as parsed
    arguments; a nested prior (AlignedSpin) is such an object itself, one level deep.
    """
    try:
        prior = _from_json(obj, depth=0)
    except _Refused as e:
        raise ConfigError(f"{what}.{key}: refused prior: {' '.join(str(e).split())}") from None
    if getattr(prior, "name", None) in (None, ""):
        prior.name = key
    return prior


def _from_json(obj, depth: int):
    if not isinstance(obj, dict) or obj.get("__prior__") is not True:
        raise _Refused(f"expected a bilby prior object, got {repr(obj)[:80]}")
    module, name, kwargs = obj.get("__module__"), obj.get("__name__"), obj.get("kwargs")
    extra = set(obj) - {"__prior__", "__module__", "__name__", "kwargs"}
    if extra:
        raise _Refused(f"unexpected keys {sorted(extra)}")
    if not isinstance(module, str) or not module.startswith(("bilby.core.prior", "bilby.gw.prior")) \
            or name not in CORE_CLASSES + GW_CLASSES:
        raise _Refused(f"prior class {module!r}.{name!r} is not allowed (allowed: {', '.join(CORE_CLASSES + GW_CLASSES)})")
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise _Refused(f"{name}: kwargs must be an object of named arguments")
    args = {}
    for k, v in kwargs.items():
        if isinstance(v, dict):
            if depth >= 1:
                raise _Refused("priors nested more than one level deep")
            if v.get("__name__") not in CORE_CLASSES:
                raise _Refused(f"a nested prior must be a bilby.core.prior class, not {repr(v.get('__name__'))[:40]}")
            v = _from_json(v, depth + 1)
        args[k] = v
    return _construct(name, [], args)


def read_prior_file(path: str | Path) -> dict:
    """``{key: prior}`` from a bilby ``.prior`` file, read as text (never handed to bilby).

    Lines are ``key = prior string`` (or a number); blank lines and lines starting with ``#`` are
    skipped, and ``# ...`` after an expression is a comment. Each value goes through
    :func:`parse_prior`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read prior file {path}: {getattr(e, 'strerror', None) or e}") from None
    priors = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"prior file {path}, line {lineno}: expected 'name = prior', got {_short(line)}")
        priors[key] = parse_prior(key, value, what=f"prior file {path}: prior")
    if not priors:
        raise ConfigError(f"prior file {path} holds no priors")
    return priors


def _class(name: str):
    import bilby

    module = bilby.gw.prior if name in GW_CLASSES else bilby.core.prior
    return getattr(module, name)


def _dotted(node) -> str | None:
    """'a.b.c' for a Name/Attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _class_name(func) -> str:
    dotted = _dotted(func)
    if dotted is None:
        raise _Refused(f"call of {ast.unparse(func)[:60]!r} is not allowed (only prior classes are called)")
    module, _, name = dotted.rpartition(".")
    allowed = {"": CORE_CLASSES + GW_CLASSES, "bilby.core.prior": CORE_CLASSES,
               "bilby.gw.prior": CORE_CLASSES + GW_CLASSES}
    if module not in allowed or name not in allowed[module]:
        raise _Refused(f"prior class {dotted!r} is not allowed (allowed: {', '.join(CORE_CLASSES + GW_CLASSES)}, "
                       "bare or as bilby.core.prior.X / bilby.gw.prior.X)")
    return name


def _call(node: ast.Call, depth: int):
    name = _class_name(node.func)
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        raise _Refused("*args / **kwargs are not allowed")
    args = [_argument(a, depth) for a in node.args]
    kwargs = {k.arg: _argument(k.value, depth) for k in node.keywords}
    return _construct(name, args, kwargs)


def _construct(name: str, args: list, kwargs: dict):
    """``name(*args, **kwargs)`` after binding to the class signature and checking every value."""
    cls = _class(name)
    try:
        bound = inspect.signature(cls).bind(*args, **kwargs)
    except TypeError as e:
        raise _Refused(f"{name}: {e}") from None
    for arg, value in bound.arguments.items():
        _check(name, arg, value)
    try:
        return cls(*bound.args, **bound.kwargs)
    except Exception as e:  # bilby's own checks of the values (e.g. minimum > maximum)
        raise _Refused(f"{name}: {e.__class__.__name__}: {e}") from None


def _argument(node, depth: int):
    """A literal argument value: number, None/True/False, str, or a nested prior (one level)."""
    if isinstance(node, ast.Call):
        if depth >= 1:
            raise _Refused("priors nested more than one level deep")
        name = _class_name(node.func)
        if name not in CORE_CLASSES:
            raise _Refused(f"a nested prior must be a bilby.core.prior class, not {name}")
        return _call(node, depth + 1)
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, (bool, str))):
        return node.value
    return _number(node)


def _number(node) -> float | int:
    """The value of a numeric literal expression (signs, + - * /, named constants)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        x = _number(node.operand)
        return -x if isinstance(node.op, ast.USub) else x
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        try:
            return _BINOPS[type(node.op)](_number(node.left), _number(node.right))
        except (ZeroDivisionError, OverflowError) as e:
            raise _Refused(str(e)) from None
    dotted = _dotted(node)
    if dotted is not None:
        module, _, name = dotted.rpartition(".")
        if name in CONSTANTS and module in ("",) + CONSTANT_MODULES:
            return CONSTANTS[name]
        raise _Refused(f"{dotted!r} is not allowed (only numbers, None/True/False, strings and the "
                       f"constants {', '.join(CONSTANTS)})")
    raise _Refused(f"{ast.unparse(node)[:40]!r} ({type(node).__name__}) is not allowed (arguments must be literals)")


def _check(cls: str, arg: str, value) -> None:
    """Refuse a value of the wrong kind for argument ``arg`` of prior class ``cls``."""
    import bilby

    if arg in PRIOR_ARGUMENTS:
        ok = isinstance(value, bilby.core.prior.Prior)
    elif isinstance(value, bilby.core.prior.Prior):
        ok = False
    elif arg in LABEL_ARGUMENTS:
        ok = value is None or isinstance(value, str)
    elif arg == "boundary":
        ok = value in BOUNDARIES
    elif arg == "cosmology":
        ok = value is None or value in COSMOLOGIES
    else:
        ok = value is None or isinstance(value, (int, float))
    if not ok:
        raise _Refused(f"{cls}: {arg}={repr(value)[:80]} is not allowed")


def _short(s: str, n: int = 120) -> str:
    """repr of ``s``, cut to about ``n`` characters."""
    s = repr(s)
    return s if len(s) <= n else s[: n - 4] + "...'"
