"""MBPP+ input types that JSON cannot carry, restored per task as evalplus does (stdlib only: this
file's source is also shipped into the sandbox harness, which calls `restore_inputs`).

MBPP+ stores its test inputs as JSON, so tuples, sets and complex numbers arrive as lists and
strings. evalplus (`evalplus/data/mbpp.py`, `mbpp_deserialize_inputs`) re-types them for a fixed
list of tasks; without that, a canonical solution receives lists where it expects tuples and
either crashes or returns a different value. The task numbers below are the same; the converters
are written out by what they do.

Special oracles (`evalplus/eval/__init__.py`): for three tasks only "returns something other than
None" is compared, for Mbpp/164 any output passes, for Mbpp/295 an output of 0 also passes.
"""


def _tuples(xs):
    return [tuple(x) for x in xs]


def _deep_tuple(x):
    return tuple(_deep_tuple(i) for i in x) if isinstance(x, list) else x


# task number -> how each input (the list of call arguments) is re-typed
_EACH_ARG_TUPLE = {
    2,
    116,
    132,
    143,
    222,
    261,
    273,
    394,
    399,
    421,
    424,
    429,
    470,
    560,
    579,
    596,
    616,
    630,
    726,
    740,
    744,
    809,
}
_EACH_ARG_TUPLE_LIST = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_FIRST_ARG_TUPLE_LIST = {75, 413, 444, 753}
_SECOND_ARG_TUPLE = {106, 750}
_FIRST_ARG_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_EACH_ARG_TUPLE_OF_TUPLES = {259, 401, 445}
_ALL_TUPLES = {580, 615, 791}

RULES = {
    **{n: lambda a: _tuples(a) for n in _EACH_ARG_TUPLE},
    **{n: lambda a: [_tuples(arg) for arg in a] for n in _EACH_ARG_TUPLE_LIST},
    **{n: lambda a: [_tuples(a[0])] + a[1:] for n in _FIRST_ARG_TUPLE_LIST},
    **{n: lambda a: [a[0], tuple(a[1])] + a[2:] for n in _SECOND_ARG_TUPLE},
    **{n: lambda a: [tuple(a[0])] + a[1:] for n in _FIRST_ARG_TUPLE},
    **{n: lambda a: [tuple(_tuples(arg)) for arg in a] for n in _EACH_ARG_TUPLE_OF_TUPLES},
    **{n: _deep_tuple for n in _ALL_TUPLES},
    # a list of sets; evalplus writes an empty member as {} (a dict), kept for identical verdicts
    115: lambda a: [[set(x) if isinstance(x, list) and x else {} for x in a[0]]],
    124: lambda a: (float(a[0]), complex(a[1])),
    252: lambda a: [complex(a[0])],
    278: lambda a: [tuple(tuple(x) if isinstance(x, list) else x for x in a[0])],
    307: lambda a: [tuple(a[0]), a[1], a[2]],
    722: lambda a: [{k: tuple(v) for k, v in a[0].items()}] + a[1:],
}

NOT_NONE_ORACLE = {"check_str", "text_match_three", "text_starta_endb"}


def task_number(task_id):
    """`Mbpp/2` -> 2; None for anything that is not an MBPP+ task id."""
    head, _, tail = str(task_id or "").rpartition("/")
    return int(tail) if head.lower() == "mbpp" and tail.isdigit() else None


def restore_inputs(task_id, inputs):
    """The inputs of an MBPP+ task with their Python types back (unchanged for other tasks)."""
    rule = RULES.get(task_number(task_id))
    return [rule(args) for args in inputs] if rule else inputs


def oracle(task_id, entry_point):
    """How outputs are compared for this task: exact | not_none | any | zero_or_exact."""
    if entry_point in NOT_NONE_ORACLE:
        return "not_none"
    return {164: "any", 295: "zero_or_exact"}.get(task_number(task_id), "exact")
