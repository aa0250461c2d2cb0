"""A pickle machine for data from a stranger: an allow-list of globals, and every value bounded.

Built on the standard library's pure-Python unpickler (`pickle._Unpickler`), whose opcode table can
be narrowed (torch's `torch.load(weights_only=True)` likewise runs the pickle in Python, in
`torch._weights_only_unpickler.Unpickler`, with an allow-list). On top of an allow-list of globals
(`find_class` answers only names the caller maps to stand-ins; nothing is imported), the opcodes
that build or mutate arbitrary objects are refused, and every container the pickle builds is
measured *as it is built*, so nothing ever walks, hashes or prints an unbounded structure:

* depth: at most `MAX_DEPTH` levels of nesting; size: at most `max_nodes` nodes counted with
  repetition (a tuple `(t, t)` counts `t` twice). A memo GET of one tuple nested 30 levels deep,
  each level `(t, t)`, is 2**30 nodes in a few hundred bytes; its repr or hash would take minutes
  and gigabytes, and hashing it cannot be interrupted. It is refused at the level that crosses
  the limit, having cost one small tuple per level.
* a container, once it is inside another container (or the argument of a call), is frozen:
  APPEND/SETITEM on it later is refused. Python's pickler always fills a container before it
  uses it, so this refuses only cycles and the tricks that would make a measured size stale.
* dict keys and set items must be str or bytes (their hashes are salted per process), or None,
  a bool, or an int below 2**61 in magnitude (distinct hashes): no hash-flooding, no hashing of
  a structure. A state dict's keys are strings.
* at most `MAX_CONTAINERS` containers and `MAX_MEMO` memo entries (memo indices below 2**32);
  MARK nesting is bounded like depth; protocol-5 buffers (BYTEARRAY8 allocates the size the
  file claims before reading it, NEXT_BUFFER, READONLY_BUFFER) are refused with the
  instance-building opcodes (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT1/2/4); BUILD only on dicts, and its
  state is dropped.
* every value shown in an error message goes through `short_repr`, which never builds more than
  a few hundred characters, whatever the value.

Each opcode then does bounded work, so time and memory are linear in the pickle's length. Any
refusal raises `CheckpointError`; the caller adds the file name.
"""

import collections
import io
import pickle
import reprlib

from ..errors import CheckpointError

__all__ = ["RestrictedUnpickler", "short_repr", "MAX_DEPTH"]

MAX_DEPTH = 32  # a state dict nests 4 levels: dict -> call arguments -> persistent id -> values
MAX_CONTAINERS = 2**21  # torch.save builds 5 per tensor (arguments, persistent id, size, stride, hooks)
MAX_MEMO = 2**22  # memo entries; torch.save memoizes about 10 values per tensor
_CONTAINERS = (tuple, list, dict, collections.OrderedDict, set, frozenset)
_MAX_MEMO_INDEX = 2**32  # what LONG_BINPUT can write; PUT's decimal text could be any int
_MAX_KEY_INT = 2**61 - 1  # ints below this in magnitude hash to themselves: no collisions to craft


class _ShortRepr(reprlib.Repr):
    """reprlib.Repr, bounded also for the values a hostile pickle can build."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxtuple, self.maxlist, self.maxdict, self.maxset = 3, 6, 6, 4, 6
        self.maxstring = self.maxother = 60

    def repr_int(self, x, level):
        return repr(x) if x.bit_length() <= 64 else f"<int of {x.bit_length()} bits>"

    def repr_bytes(self, x, level):
        return repr(x[:self.maxstring]) + ("..." if len(x) > self.maxstring else "")

    repr_bytearray = repr_bytes

    def repr_OrderedDict(self, x, level):  # noqa: N802 - reprlib dispatches on the type's name
        return f"OrderedDict({self.repr_dict(x, level)})"


short_repr = _ShortRepr().repr


def _refuse(what):
    raise CheckpointError(f"the pickle {what}; refused, nothing was executed")


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickle `data` calling only the callables of `allowed` ({(module, name): stand-in}).

    `persistent_load(pid)` resolves persistent ids (BINPERSID); `max_nodes` bounds the size of
    every value (default: twice the pickle's length plus 1024: a value without shared parts has
    fewer nodes than the pickle has opcodes).
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, data, allowed, persistent_load, max_nodes=None):
        super().__init__(io.BytesIO(data))
        self._allowed, self._persistent_load = allowed, persistent_load
        self._callables = [f for f in allowed.values() if callable(f) and not isinstance(f, type)]
        self._max_nodes = 2 * len(data) + 1024 if max_nodes is None else max_nodes
        self._info = {}  # id(container) -> [container, depth, nodes, frozen]; keeps it alive

    # -- globals and persistent ids -----------------------------------------------------------
    def find_class(self, module, name):
        obj = self._allowed.get((module, name))
        if obj is None:
            raise CheckpointError(
                f"the pickle refers to the global {module[:100]}.{name[:100]}, which is not "
                f"allowed; only the globals that rebuild tensors and ordered dicts are. It was not "
                f"imported or called. If you trust this file, load it with torch and save it as "
                f"safetensors.")
        return obj

    def persistent_load(self, pid):
        self._child(pid)
        return self._persistent_load(pid)

    # -- measuring -----------------------------------------------------------------------------
    def _child(self, value):
        """(depth, nodes) of `value`, which is being put inside something: freeze it."""
        if not isinstance(value, _CONTAINERS):
            return 0, 1
        entry = self._info.get(id(value))
        if entry is None:  # every container is built by a handler below; this cannot happen
            raise CheckpointError(f"the pickle built a {type(value).__name__} outside the "
                                  f"measured opcodes")
        entry[3] = True
        return entry[1], entry[2]

    def _check(self, depth, nodes):
        if depth > MAX_DEPTH:
            _refuse(f"nests values more than {MAX_DEPTH} levels deep (a state dict needs 4)")
        if nodes > self._max_nodes:
            _refuse(f"builds a value of more than {self._max_nodes} nodes counted with repetition "
                    f"(shared parts nested into an exponentially large structure?)")

    def _new(self, container, children=()):
        """Register a container built from `children` (frozen from now on); return it."""
        depth, nodes = 1, 1
        for child in children:
            d, n = self._child(child)
            depth, nodes = max(depth, d + 1), nodes + n
        self._check(depth, nodes)
        if len(self._info) >= MAX_CONTAINERS:
            _refuse(f"builds more than {MAX_CONTAINERS} containers")
        self._info[id(container)] = [container, depth, nodes, False]
        return container

    def _grow(self, container, kind, children):
        """Account for `children` being added to `container`, which must be an unfrozen `kind`."""
        measured = [self._child(child) for child in children]
        entry = self._info.get(id(container)) if isinstance(container, kind) else None
        if entry is None:
            _refuse(f"adds items to a {type(container).__name__}")
        if entry[3]:
            _refuse(f"adds items to a {type(container).__name__} that is already inside another "
                    f"value (a cycle, or a container changed after use)")
        for d, n in measured:
            entry[1], entry[2] = max(entry[1], d + 1), entry[2] + n
        self._check(entry[1], entry[2])

    @staticmethod
    def _key(key):
        if not (isinstance(key, (str, bytes)) or key is None or isinstance(key, bool)
                or (type(key) is int and -_MAX_KEY_INT < key < _MAX_KEY_INT)):
            _refuse(f"uses a {type(key).__name__} as a dict key or set item (allowed: str, bytes, "
                    f"None, bool, int)")
        return key

    def _pairs(self, items):
        if len(items) % 2:
            _refuse("gives a dict an odd number of keys and values")
        return [(self._key(items[i]), items[i + 1]) for i in range(0, len(items), 2)]

    # -- the opcodes that build containers: each measures what it builds ------------------------
    def load_empty_tuple(self):
        self.append(self._new(()))

    def load_tuple(self):
        value = tuple(self.pop_mark())
        self.append(self._new(value, value))

    def load_tuple1(self):
        value = (self.stack[-1],)
        self.stack[-1] = self._new(value, value)

    def load_tuple2(self):
        value = tuple(self.stack[-2:])
        self.stack[-2:] = [self._new(value, value)]

    def load_tuple3(self):
        value = tuple(self.stack[-3:])
        self.stack[-3:] = [self._new(value, value)]

    def load_empty_list(self):
        self.append(self._new([]))

    def load_list(self):
        items = self.pop_mark()
        self.append(self._new(items, items))

    def load_empty_dictionary(self):
        self.append(self._new({}))

    def load_dict(self):
        items = self.pop_mark()
        self.append(self._new(dict(self._pairs(items)), items))

    def load_empty_set(self):
        self.append(self._new(set()))

    def load_frozenset(self):
        items = [self._key(item) for item in self.pop_mark()]
        self.append(self._new(frozenset(items), items))

    def load_append(self):
        value = self.stack.pop()
        self._grow(self.stack[-1], list, [value])
        self.stack[-1].append(value)

    def load_appends(self):
        items = self.pop_mark()
        self._grow(self.stack[-1], list, items)
        self.stack[-1].extend(items)

    def load_setitem(self):
        value = self.stack.pop()
        key = self._key(self.stack.pop())
        self._grow(self.stack[-1], dict, [key, value])
        self.stack[-1][key] = value

    def load_setitems(self):
        items = self.pop_mark()
        pairs = self._pairs(items)
        self._grow(self.stack[-1], dict, items)
        self.stack[-1].update(pairs)

    def load_additems(self):
        items = [self._key(item) for item in self.pop_mark()]
        self._grow(self.stack[-1], set, items)
        self.stack[-1].update(items)

    def load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if type(args) is not tuple:
            _refuse(f"calls a function with a {type(args).__name__} of arguments, not a tuple")
        self._child(args)
        if func is collections.OrderedDict:
            self.stack[-1] = self._ordered_dict(args)
        elif any(func is f for f in self._callables):
            self.stack[-1] = func(*args)  # a stand-in: checks its arguments, returns no container
        else:
            _refuse(f"calls a {type(func).__name__}, which is not an allowed function")

    def _ordered_dict(self, args):
        """OrderedDict() as torch.save writes it (then SETITEMS), or OrderedDict(pairs or dict)."""
        if not args:
            return self._new(collections.OrderedDict())
        source = args[0]
        if len(args) == 1 and isinstance(source, dict):
            pairs = list(source.items())
        elif len(args) == 1 and isinstance(source, (list, tuple)) and all(
                isinstance(p, (list, tuple)) and len(p) == 2 for p in source):
            pairs = [(self._key(k), v) for k, v in source]
        else:
            _refuse("calls OrderedDict with arguments other than key-value pairs")
        return self._new(collections.OrderedDict(pairs), [x for pair in pairs for x in pair])

    def load_build(self):
        # BUILD sets an object's state; torch only uses it to attach `_metadata` to the state
        # dict. Accept it on dicts (and drop the state), refuse it on anything else.
        self._child(self.stack.pop())
        if not isinstance(self.stack[-1], dict):
            _refuse(f"sets the state of a {type(self.stack[-1]).__name__}, which is not allowed")

    # -- the stack and the memo ----------------------------------------------------------------
    def load_mark(self):
        if len(self.metastack) >= MAX_DEPTH:
            _refuse(f"nests MARKs more than {MAX_DEPTH} deep")
        pickle._Unpickler.load_mark(self)

    def _memoize(self, i):
        if not 0 <= i < _MAX_MEMO_INDEX:
            _refuse(f"memoizes at index {short_repr(i)}, outside [0, 2**32)")
        if len(self.memo) >= MAX_MEMO and i not in self.memo:
            _refuse(f"memoizes more than {MAX_MEMO} values")
        self.memo[i] = self.stack[-1]

    def load_put(self):
        self._memoize(int(self.readline()[:-1]))

    def load_long_binput(self):
        self._memoize(int.from_bytes(self.read(4), "little"))

    def load_memoize(self):
        self._memoize(len(self.memo))

    def _forbidden(self):
        _refuse("uses an opcode that builds arbitrary objects (INST/OBJ/NEWOBJ/EXT), which a "
                "state dict never needs")

    def _buffers(self):
        _refuse("uses protocol-5 buffers (BYTEARRAY8/NEXT_BUFFER/READONLY_BUFFER), which "
                "torch.save never writes")

    _OWN = {pickle.EMPTY_TUPLE: load_empty_tuple, pickle.TUPLE: load_tuple,
            pickle.TUPLE1: load_tuple1, pickle.TUPLE2: load_tuple2, pickle.TUPLE3: load_tuple3,
            pickle.EMPTY_LIST: load_empty_list, pickle.LIST: load_list,
            pickle.EMPTY_DICT: load_empty_dictionary, pickle.DICT: load_dict,
            pickle.EMPTY_SET: load_empty_set, pickle.FROZENSET: load_frozenset,
            pickle.APPEND: load_append, pickle.APPENDS: load_appends,
            pickle.SETITEM: load_setitem, pickle.SETITEMS: load_setitems,
            pickle.ADDITEMS: load_additems, pickle.REDUCE: load_reduce, pickle.BUILD: load_build,
            pickle.MARK: load_mark, pickle.PUT: load_put, pickle.LONG_BINPUT: load_long_binput,
            pickle.MEMOIZE: load_memoize,
            **dict.fromkeys((pickle.INST, pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX,
                             pickle.EXT1, pickle.EXT2, pickle.EXT4), _forbidden),
            **dict.fromkeys((pickle.BYTEARRAY8, pickle.NEXT_BUFFER, pickle.READONLY_BUFFER),
                            _buffers)}
    dispatch.update({op[0]: handler for op, handler in _OWN.items()})
