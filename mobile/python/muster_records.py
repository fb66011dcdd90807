"""Python manners for the generated bindings: records and the store.

UniFFI gives each record a ``__str__`` and a field-wise ``__eq__`` only: a
list of them prints as ``<muster.PossibleDuplicate object at …>``,
``record == None`` raises ``AttributeError``, and a record cannot go in a
set or be a dict key. ``improve`` gives every record class of a generated
module a ``__repr__`` that shows its fields, an ``__eq__`` that answers
anything (``False`` for another type, ``None`` included) and a ``__hash__``
over its fields.

An error (``MusterError``) reads as its reason alone, the words for a
person; its other fields (``field``, ``kind``, ``id``) say what it concerns.

The store object (``Muster``) gets ``close()`` and works as a context
manager (``with muster.Muster.open(path) as store: …``): both call its
``shutdown()``, which stops sync, lets go of the listener and closes the
store at once, a listener referring to the store notwithstanding.

scripts/bindings copies this file beside the generated modules, as
``_muster_records.py``, and ends each of them with a call to ``improve``.
"""

import enum
import inspect


def _frozen(value):
    """A hashable form of a field's value (lists and maps frozen)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return frozenset((k, _frozen(v)) for k, v in value.items())
    return value


def _record_fields(cls):
    """The fields of a generated record class (its ``__init__`` takes them
    all by keyword), or None for any other class."""
    if issubclass(cls, (BaseException, enum.Enum)) or "__eq__" not in cls.__dict__:
        return None
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    if not params or any(p.kind is not p.KEYWORD_ONLY for p in params):
        return None
    return tuple(p.name for p in params)


def _give_manners(cls, fields):
    def __repr__(self):
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in fields)
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in fields)

    def __hash__(self):
        return hash((type(self).__name__,) + tuple(_frozen(getattr(self, f)) for f in fields))

    cls.__repr__ = __repr__
    cls.__str__ = __repr__
    cls.__eq__ = __eq__
    cls.__hash__ = __hash__


def _closable(cls):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        return False

    cls.close = cls.shutdown
    cls.__enter__ = __enter__
    cls.__exit__ = __exit__


def _reason_alone(error):
    """An error's ``str()`` is its reason, the words for a person (UniFFI
    joins every field: ``reason='…', field='…'``)."""
    for variant in vars(error).values():
        if isinstance(variant, type) and issubclass(variant, error):
            variant.__str__ = lambda self: getattr(self, "reason", "")


def improve(namespace):
    """Gives the record classes defined in the module ``namespace`` (its
    ``globals()``) their manners, and the store its ``close`` and ``with``."""
    module = namespace.get("__name__")
    store = namespace.get("Muster")
    if isinstance(store, type) and hasattr(store, "shutdown"):
        _closable(store)
    error = namespace.get("MusterError")
    if isinstance(error, type) and issubclass(error, BaseException):
        _reason_alone(error)
    for name, cls in list(namespace.items()):
        if isinstance(cls, type) and not name.startswith("_") and cls.__module__ == module:
            fields = _record_fields(cls)
            if fields:
                _give_manners(cls, fields)
