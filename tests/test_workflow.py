"""Workflows: adding tasks, their options, and how a task's parameters are bound and filled.

No ``from __future__ import annotations`` here: annotations must be real objects, so that both
the object and the postponed (string) form of ``plait.Context`` are exercised.
"""

import functools
import inspect as inspect_module
import math
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

import plait
from plait import (
    BindingError,
    Context,
    DuplicateTaskError,
    InvalidOptionError,
    RetryPolicy,
    TaskSpec,
    TaskStatus,
    TriggerRule,
    Workflow,
)

NO_RETRY = RetryPolicy(max_retries=0)


# -- module-level task functions (their __qualname__ appears in error messages) ----------------


def one() -> int:
    return 1


def two() -> int:
    return 2


def not_a_task() -> int:
    return 0


def needs_x(x: int) -> int:
    return x


def takes_x(x: int = 0) -> int:
    return x


def takes_kwargs(x: int = 0, **extra: Any) -> dict[str, Any]:
    return {"x": x, **extra}


def positional_only(x: int, /) -> int:
    return x


def positional_only_with_default(x: int = 7, /) -> int:
    return x


async def async_one() -> int:
    return 1


async def async_add(a: int, b: int) -> int:
    return a + b


def sync_add(a: int, b: int) -> int:
    return a + b


class AsyncCallable:
    async def __call__(self) -> int:
        return 1

    async def method(self) -> int:
        return 2


class SyncCallable:
    def __call__(self) -> int:
        return 1

    def method(self) -> int:
        return 2


async def async_generator() -> Any:
    yield 1


def _postponed(source: str) -> dict[str, Any]:
    """Execute ``source`` as a module that has ``from __future__ import annotations``."""
    namespace: dict[str, Any] = {}
    code = "from __future__ import annotations\n" + textwrap.dedent(source)
    exec(compile(code, "<postponed>", "exec"), namespace)
    return namespace


# -- the decorator ------------------------------------------------------------------------------


def test_bare_decorator_adds_a_task_named_after_the_function() -> None:
    wf = Workflow("w")

    @wf.task
    def fetch() -> int:
        return 1

    assert list(wf.tasks) == ["fetch"]
    spec = wf.tasks["fetch"]
    assert spec.id == "fetch"
    assert spec.fn is fetch
    assert spec.depends_on == ()


def test_bare_decorator_returns_the_function_unchanged() -> None:
    wf = Workflow("w")

    def fetch() -> int:
        return 41

    decorated = wf.task(fetch)
    assert decorated is fetch
    assert decorated() == 41


def test_decorator_with_options_returns_the_function_unchanged() -> None:
    wf = Workflow("w")

    def fetch() -> int:
        return 41

    decorated = wf.task(id="get", priority=3)(fetch)
    assert decorated is fetch
    assert decorated() == 41


def test_decorator_options_are_recorded_on_the_spec() -> None:
    wf = Workflow("w")
    policy = RetryPolicy(max_retries=5)
    wf.add_task("a", one)

    @wf.task(
        id="load",
        depends_on=["a"],
        params={"x": 3},
        retry=policy,
        timeout=2.5,
        critical=True,
        pool="db",
        priority=-4,
        estimate=0.5,
    )
    def load(a: int, x: int) -> int:
        return a + x

    spec = wf.tasks["load"]
    assert spec == TaskSpec(
        id="load",
        fn=load,
        depends_on=("a",),
        params={"x": 3},
        retry=policy,
        timeout=2.5,
        critical=True,
        pool="db",
        priority=-4,
        estimate=0.5,
        is_async=False,
    )


def test_decorator_defaults_match_add_task_defaults() -> None:
    wf = Workflow("w")
    wf.task(one)
    spec = wf.add_task("other", two)
    decorated = wf.tasks["one"]
    for option in ("depends_on", "retry", "timeout", "critical", "pool", "priority", "estimate"):
        assert getattr(decorated, option) == getattr(spec, option), option
    assert dict(decorated.params) == dict(spec.params) == {}


def test_decorator_id_option_replaces_the_function_name() -> None:
    wf = Workflow("w")
    wf.task(id="first")(one)
    assert list(wf.tasks) == ["first"]
    assert "one" not in wf


def test_decorator_rejects_an_empty_id() -> None:
    wf = Workflow("w")
    with pytest.raises(InvalidOptionError, match=r"^task ids must be non-empty strings, not ''$"):
        wf.task(id="")(one)
    assert len(wf) == 0


def test_decorator_on_a_callable_without_a_name_asks_for_an_id() -> None:
    wf = Workflow("w")
    nameless = SyncCallable()
    with pytest.raises(InvalidOptionError, match=r"^give <.*SyncCallable object at .*> an id: "):
        wf.task(nameless)
    wf.task(id="named")(nameless)
    assert wf.tasks["named"].fn is nameless


# -- depends_on ---------------------------------------------------------------------------------


def test_depends_on_accepts_ids() -> None:
    wf = Workflow("w")
    wf.add_task("a", one)
    wf.add_task("b", two)
    spec = wf.add_task("c", takes_kwargs, depends_on=["b", "a"])
    assert spec.depends_on == ("b", "a")


def test_depends_on_accepts_decorated_functions() -> None:
    wf = Workflow("w")

    @wf.task
    def fetch() -> int:
        return 1

    @wf.task(id="parse_it")
    def parse() -> int:
        return 2

    @wf.task(depends_on=[fetch, parse, "fetch_too"])
    def load() -> None:
        return None

    assert wf.tasks["load"].depends_on == ("fetch", "parse_it", "fetch_too")


def test_depends_on_a_function_added_with_add_task_uses_its_id() -> None:
    wf = Workflow("w")
    wf.add_task("the_one", one)
    assert wf.add_task("b", two, depends_on=[one]).depends_on == ("the_one",)


def test_depends_on_accepts_any_iterable() -> None:
    wf = Workflow("w")
    wf.add_task("a", one)
    spec = wf.add_task("b", two, depends_on=iter(["a"]))
    assert spec.depends_on == ("a",)


def test_depends_on_a_function_that_is_not_a_task_names_it_and_says_how_to_fix() -> None:
    wf = Workflow("w")
    with pytest.raises(
        InvalidOptionError,
        match=r"^task 'b' depends on not_a_task, which is not a task of workflow 'w'; "
        r"add it first, or name the dependency by its id$",
    ):
        wf.add_task("b", two, depends_on=[not_a_task])
    assert "b" not in wf


def test_depends_on_a_task_of_another_workflow_is_rejected() -> None:
    other = Workflow("other")
    other.add_task("one", one)
    wf = Workflow("w")
    with pytest.raises(InvalidOptionError, match=r"^task 'b' depends on one, which is not a task"):
        wf.add_task("b", two, depends_on=[one])


def test_depends_on_an_unhashable_object_is_rejected_as_not_a_task() -> None:
    wf = Workflow("w")
    with pytest.raises(InvalidOptionError, match=r"^task 'b' depends on \[1\], which is not a"):
        wf.add_task("b", two, depends_on=[[1]])  # type: ignore[list-item]


def test_a_function_is_analysed_once_however_many_tasks_run_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[object] = []
    real_signature = inspect_module.signature

    def counting_signature(fn: Any, *args: Any, **kwargs: Any) -> inspect_module.Signature:
        calls.append(fn)
        return real_signature(fn, *args, **kwargs)

    monkeypatch.setattr(inspect_module, "signature", counting_signature)
    wf = Workflow("w")
    for i in range(50):
        wf.add_task(f"t{i}", takes_x, params={"x": i})
    assert calls == [takes_x]
    assert [wf.tasks[f"t{i}"].binding.params["x"] for i in (0, 49)] == [0, 49]


def test_an_unhashable_callable_runs_but_can_only_be_named_by_id() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> int:
            return 1

    wf = Workflow("w")
    task = Unhashable()
    wf.add_task("a", task)
    wf.add_task("b", task)
    wf.add_task("c", two, depends_on=["a"])
    with pytest.raises(InvalidOptionError, match=r"^task 'd' depends on .*, which is not a task"):
        wf.add_task("d", two, depends_on=[task])  # type: ignore[list-item]


def test_a_function_whose_task_was_refused_is_not_a_task_to_depend_on() -> None:
    wf = Workflow("w")
    with pytest.raises(BindingError):
        wf.add_task("t", needs_x)  # nothing fills x
    with pytest.raises(InvalidOptionError, match=r"^task 'u' depends on needs_x, which is not a"):
        wf.add_task("u", two, depends_on=[needs_x])


def test_depends_on_a_bare_string_is_rejected_at_add_time() -> None:
    wf = Workflow("w")
    wf.add_task("fetch", one)
    with pytest.raises(InvalidOptionError, match=r"^task 'b': .*\['fetch'\]"):
        wf.add_task("b", two, depends_on="fetch")


def test_a_dependency_listed_twice_is_rejected_naming_the_task() -> None:
    # Checked in the graph's one pass (a comparison per edge), not by a set per add_task.
    wf = Workflow("w")
    wf.add_task("a", one)
    wf.add_task("c", two)
    wf.add_task("b", two, depends_on=["c", "a", one])
    with pytest.raises(
        InvalidOptionError,
        match=r"^task 'b' lists a dependency twice: \('c', 'a', 'a'\); list each one once$",
    ):
        wf.validate()


def test_a_dependency_listed_twice_is_refused_before_anything_runs() -> None:
    ran = []
    wf = Workflow("w")
    wf.add_task("a", lambda: ran.append("a"))
    wf.add_task("b", two, depends_on=["a", "a"])
    with pytest.raises(InvalidOptionError, match=r"^task 'b' .*twice.*; list each one once$"):
        plait.run(wf, store=plait.stores.MemoryStore())
    assert ran == []


def test_depends_on_a_function_added_as_two_tasks_is_ambiguous() -> None:
    wf = Workflow("w")
    wf.add_task("first", one)
    wf.add_task("second", one)
    wf.add_task("third", one)
    with pytest.raises(
        InvalidOptionError,
        match=r"^task 'c' depends on one, which was added as several tasks "
        r"\('first', 'second', 'third'\); name the dependency by its id$",
    ):
        wf.add_task("c", two, depends_on=[one])


# -- add_task -----------------------------------------------------------------------------------


def test_add_task_returns_the_spec_it_stores() -> None:
    wf = Workflow("w")
    spec = wf.add_task("a", one)
    assert wf.tasks["a"] == spec
    assert spec.is_async is False
    assert dict(spec.params) == {}


def test_add_task_params_are_copied_and_read_only() -> None:
    wf = Workflow("w")
    params = {"x": 1}
    spec = wf.add_task("a", takes_x, params=params)
    params["x"] = 2
    assert spec.params == {"x": 1}
    with pytest.raises(TypeError):
        spec.params["x"] = 3  # type: ignore[index]


def test_task_spec_is_frozen() -> None:
    spec = Workflow("w").add_task("a", one)
    with pytest.raises(AttributeError):
        spec.priority = 5  # type: ignore[misc]


def test_add_task_rejects_a_non_callable() -> None:
    wf = Workflow("w")
    with pytest.raises(InvalidOptionError, match=r"^task 'a': fn must be callable, not 42$"):
        wf.add_task("a", 42)  # type: ignore[arg-type]


def test_add_task_accepts_forward_references_to_later_tasks() -> None:
    wf = Workflow("w")
    wf.add_task("b", needs_x, depends_on=["x"])
    wf.add_task("x", one)
    wf.validate()
    assert list(wf.tasks) == ["b", "x"]


# -- duplicate ids ------------------------------------------------------------------------------


def test_duplicate_id_with_add_task_is_rejected() -> None:
    wf = Workflow("w")
    first = wf.add_task("a", one)
    with pytest.raises(
        DuplicateTaskError,
        match=r"^task 'a' is already defined in workflow 'w'; give each task a unique id "
        r"\(for a decorated function: @wf\.task\(id=\.\.\.\)\)$",
    ):
        wf.add_task("a", two)
    assert wf.tasks["a"] == first
    assert len(wf) == 1


def test_duplicate_id_with_the_decorator_is_rejected() -> None:
    wf = Workflow("w")
    wf.task(one)
    with pytest.raises(DuplicateTaskError, match=r"^task 'one' is already defined"):
        wf.task(one)
    wf.task(id="one_again")(one)
    assert list(wf.tasks) == ["one", "one_again"]


# -- option validation --------------------------------------------------------------------------


def _option_error(option: str, expected: str, value_repr: str) -> str:
    return rf"^task 't': {option} must be {expected}, not {value_repr}$"


SECONDS_GT_0 = r"a number of seconds > 0"
SECONDS_GE_0 = r"a number of seconds >= 0"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, _option_error("timeout", SECONDS_GT_0, "0")),
        ({"timeout": -1.5}, _option_error("timeout", SECONDS_GT_0, r"-1\.5")),
        ({"timeout": math.nan}, _option_error("timeout", SECONDS_GT_0, "nan")),
        ({"timeout": math.inf}, _option_error("timeout", SECONDS_GT_0, "inf")),
        ({"timeout": "5"}, _option_error("timeout", SECONDS_GT_0, "'5'")),
        pytest.param(
            {"timeout": True},
            _option_error("timeout", SECONDS_GT_0, "True"),
        ),
        ({"priority": 1.5}, _option_error("priority", "an int", r"1\.5")),
        ({"priority": "1"}, _option_error("priority", "an int", "'1'")),
        ({"priority": True}, _option_error("priority", "an int", "True")),
        ({"priority": False}, _option_error("priority", "an int", "False")),
        ({"estimate": -1}, _option_error("estimate", SECONDS_GE_0, "-1")),
        ({"estimate": math.nan}, _option_error("estimate", SECONDS_GE_0, "nan")),
        ({"estimate": math.inf}, _option_error("estimate", SECONDS_GE_0, "inf")),
        ({"estimate": "1"}, _option_error("estimate", SECONDS_GE_0, "'1'")),
        pytest.param(
            {"estimate": True},
            _option_error("estimate", SECONDS_GE_0, "True"),
        ),
        ({"pool": ""}, _option_error("pool", "a non-empty pool name", "''")),
        ({"pool": 3}, _option_error("pool", "a non-empty pool name", "3")),
        ({"retry": 3}, _option_error("retry", r"a plait\.RetryPolicy", "3")),
        (
            {"retry": {"max_retries": 3}},
            _option_error("retry", r"a plait\.RetryPolicy", r"\{'max_retries': 3\}"),
        ),
        ({"critical": 1}, _option_error("critical", "True or False", "1")),
        ({"critical": "yes"}, _option_error("critical", "True or False", "'yes'")),
        ({"critical": None}, _option_error("critical", "True or False", "None")),
    ],
    ids=lambda value: repr(value) if isinstance(value, dict) else None,
)
def test_bad_option_values_are_rejected_naming_task_option_and_expectation(
    options: dict[str, Any], message: str
) -> None:
    wf = Workflow("w")
    with pytest.raises(InvalidOptionError, match=message):
        wf.add_task("t", one, **options)
    assert "t" not in wf


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, _option_error("timeout", SECONDS_GT_0, "0")),
        ({"priority": True}, _option_error("priority", "an int", "True")),
        ({"pool": ""}, _option_error("pool", "a non-empty pool name", "''")),
    ],
)
def test_the_decorator_validates_options_like_add_task(
    options: dict[str, Any], message: str
) -> None:
    wf = Workflow("w")
    with pytest.raises(InvalidOptionError, match=message):
        wf.task(id="t", **options)(one)
    assert len(wf) == 0


@pytest.mark.parametrize("bad_id", ["", None, 3])
def test_an_empty_or_non_string_id_is_rejected(bad_id: Any) -> None:
    wf = Workflow("w")
    with pytest.raises(
        InvalidOptionError, match=rf"^task ids must be non-empty strings, not {bad_id!r}$"
    ):
        wf.add_task(bad_id, one)


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 0.001},
        {"timeout": 10},
        {"timeout": None},
        {"priority": -3},
        {"priority": 10**9},
        {"estimate": 0},
        {"estimate": 0.25},
        {"estimate": None},
        {"pool": "db"},
        {"critical": True},
        {"retry": RetryPolicy()},
    ],
    ids=repr,
)
def test_good_option_values_are_accepted(options: dict[str, Any]) -> None:
    spec = Workflow("w").add_task("t", one, **options)
    for option, value in options.items():
        assert getattr(spec, option) == value


@pytest.mark.parametrize("name", ["", None])
def test_a_workflow_needs_a_non_empty_name(name: Any) -> None:
    with pytest.raises(
        InvalidOptionError, match=rf"^a workflow needs a non-empty name, not {name!r}$"
    ):
        Workflow(name)


# -- binding ------------------------------------------------------------------------------------


def test_a_parameter_named_like_a_dependency_is_bound_to_its_output() -> None:
    wf = Workflow("w")
    wf.add_task("a", one)
    wf.add_task("b", two)
    spec = wf.add_task("c", sync_add, depends_on=["a", "b"])
    assert spec.passed == ("a", "b")
    assert spec.binding.context_parameter is None


def test_a_dependency_without_a_parameter_is_only_an_ordering_constraint() -> None:
    wf = Workflow("w")
    wf.add_task("a", one)
    spec = wf.add_task("b", two, depends_on=["a"])
    assert spec.passed == ()


def test_a_parameter_named_ctx_gets_the_context() -> None:
    def task(ctx: object) -> None:
        return None

    spec = Workflow("w").add_task("t", task)
    assert spec.binding.context_parameter == "ctx"


def test_a_parameter_annotated_context_gets_the_context_whatever_its_name() -> None:
    def task(context: Context) -> None:
        return None

    assert task.__annotations__["context"] is Context
    spec = Workflow("w").add_task("t", task)
    assert spec.binding.context_parameter == "context"


@pytest.mark.parametrize(
    "source",
    [
        """
        import plait
        def task(context: plait.Context) -> None:
            return None
        """,
        """
        from plait import Context
        def task(context: Context) -> None:
            return None
        """,
    ],
    ids=["plait.Context", "Context"],
)
def test_a_postponed_context_annotation_gets_the_context(source: str) -> None:
    task = _postponed(source)["task"]
    assert isinstance(task.__annotations__["context"], str)
    spec = Workflow("w").add_task("t", task)
    assert spec.binding.context_parameter == "context"


def test_a_postponed_context_annotation_under_an_alias_gets_the_context() -> None:
    task = _postponed(
        """
        from plait import Context as TaskContext
        def task(context: TaskContext) -> None:
            return None
        """
    )["task"]
    spec = Workflow("w").add_task("t", task)
    assert spec.binding.context_parameter == "context"


def test_only_one_parameter_gets_the_context() -> None:
    def task(ctx: Context, other: Context) -> None:
        return None

    with pytest.raises(BindingError, match=r"^task 't': nothing fills parameter 'other' of "):
        Workflow("w").add_task("t", task)


def test_params_fill_the_remaining_parameters() -> None:
    def task(a: int, ctx: Context, rate: float, name: str = "n") -> None:
        return None

    wf = Workflow("w")
    wf.add_task("a", one)
    spec = wf.add_task("t", task, depends_on=["a"], params={"rate": 0.5})
    assert spec.passed == ("a",)
    assert spec.binding.context_parameter == "ctx"
    assert dict(spec.binding.params) == {"rate": 0.5}


def test_a_kwargs_task_is_passed_every_dependency_but_those_given_as_params() -> None:
    def upstream(**outputs: Any) -> None:
        return None

    wf = Workflow("w")
    for task_id in ("a", "b", "c"):
        wf.add_task(task_id, one)
    every = wf.add_task("every", upstream, depends_on=["c", "a", "b"])
    assert every.passed == ("c", "a", "b")
    some = wf.add_task("some", upstream, depends_on=["c", "a", "b"], params={"a": 1})
    assert some.passed == ("c", "b")
    assert dict(some.binding.params) == {"a": 1}


def test_named_dependency_parameters_are_passed_in_depends_on_order() -> None:
    def task(b: int, ctx: Context, a: int, **rest: Any) -> None:
        return None

    wf = Workflow("w")
    for task_id in ("a", "b", "c"):
        wf.add_task(task_id, one)
    spec = wf.add_task("t", task, depends_on=["a", "c", "b"])
    assert spec.passed == ("a", "c", "b")
    assert spec.binding.context_parameter == "ctx"
    graph = wf.graph()
    inputs = graph.inputs[graph.index["t"]]
    assert inputs == (0, 2, 1)


def test_a_positional_only_parameter_named_like_a_dependency_is_not_passed() -> None:
    wf = Workflow("w")
    wf.add_task("x", one)
    spec = wf.add_task("t", positional_only_with_default, depends_on=["x"])
    assert spec.passed == ()
    assert wf.graph().inputs[1] is None


def test_parameters_with_defaults_need_nothing() -> None:
    def task(x: int = 1, *, y: str = "y") -> None:
        return None

    spec = Workflow("w").add_task("t", task)
    assert spec.passed == ()
    assert dict(spec.binding.params) == {}


def test_var_positional_parameters_are_ignored() -> None:
    def task(*args: int) -> None:
        return None

    Workflow("w").add_task("t", task)


def test_trigger_takes_a_rule_or_its_name_and_cleanup_defaults_to_all_done() -> None:
    wf = Workflow("w")
    wf.add_task("a", lambda: 1)
    assert wf.add_task("b", lambda: 1, depends_on=["a"]).trigger is TriggerRule.ALL_SUCCESS
    assert wf.add_task("c", lambda: 1, depends_on=["a"], trigger="one_failed").trigger == (
        TriggerRule.ONE_FAILED
    )
    spec = wf.add_task("d", lambda: 1, depends_on=["a"], cleanup=True)
    assert (spec.cleanup, spec.trigger) == (True, TriggerRule.ALL_DONE)
    spec = wf.add_task("e", lambda: 1, depends_on=["a"], cleanup=True, trigger="all_success")
    assert spec.trigger is TriggerRule.ALL_SUCCESS


def test_an_unknown_trigger_rule_is_an_invalid_option_naming_the_rules() -> None:
    wf = Workflow("w")
    with pytest.raises(
        InvalidOptionError,
        match=r"^task 'a': trigger='one_fail' is not a trigger rule; use one of all_success, ",
    ):
        wf.add_task("a", lambda: 1, trigger="one_fail")
    with pytest.raises(
        InvalidOptionError, match=r"^task 'a': cleanup must be True or False, not 1$"
    ):
        wf.add_task("a", lambda: 1, cleanup=1)  # type: ignore[arg-type]


def test_a_parameter_without_default_bound_to_a_dependency_that_may_not_succeed() -> None:
    wf = Workflow("w")
    wf.add_task("fetch", lambda: 1)
    with pytest.raises(
        BindingError,
        match=r"^task 'total': parameter 'fetch' gets the output of dependency 'fetch', which "
        r"may not succeed under trigger='all_done'; give 'fetch' a default \(used when it did "
        r"not succeed\), or read ctx.upstream\['fetch'\]$",
    ):
        wf.add_task("total", lambda fetch: fetch, depends_on=["fetch"], trigger="all_done")
    wf.add_task("total", lambda fetch=None: fetch, depends_on=["fetch"], trigger="all_done")


def test_an_unbindable_parameter_is_a_binding_error_naming_task_and_parameter() -> None:
    wf = Workflow("w")
    with pytest.raises(
        BindingError,
        match=r"^task 'b': nothing fills parameter 'x' of needs_x; add 'x' to depends_on "
        r"\(to receive that task's output\), to params, or give it a default$",
    ):
        wf.add_task("b", needs_x)
    assert "b" not in wf


def test_an_unbindable_keyword_only_parameter_is_a_binding_error() -> None:
    def task(*, limit: int) -> None:
        return None

    with pytest.raises(BindingError, match=r"^task 't': nothing fills parameter 'limit' of "):
        Workflow("w").add_task("t", task)


def test_the_decorator_raises_binding_errors_at_definition_time() -> None:
    wf = Workflow("w")
    with pytest.raises(BindingError, match=r"^task 'needs_x': nothing fills parameter 'x'"):
        wf.task(needs_x)


def test_params_that_match_no_parameter_are_a_binding_error() -> None:
    with pytest.raises(
        BindingError,
        match=r"^task 't': params \['y', 'z'\] match no parameter of takes_x; remove them or "
        r"rename the parameters$",
    ):
        Workflow("w").add_task("t", takes_x, params={"z": 1, "x": 2, "y": 3})


def test_params_that_match_no_parameter_are_fine_with_var_keyword() -> None:
    spec = Workflow("w").add_task("t", takes_kwargs, params={"x": 1, "anything": 2})
    assert dict(spec.binding.params) == {"x": 1, "anything": 2}


def test_a_positional_only_parameter_without_default_is_a_binding_error() -> None:
    with pytest.raises(
        BindingError,
        match=r"^task 't': parameter 'x' is positional-only, so plait cannot pass it by name; "
        r"make it a normal parameter$",
    ):
        Workflow("w").add_task("t", positional_only)


def test_a_positional_only_parameter_named_like_a_dependency_is_still_a_binding_error() -> None:
    wf = Workflow("w")
    wf.add_task("x", one)
    with pytest.raises(BindingError, match=r"^task 't': parameter 'x' is positional-only"):
        wf.add_task("t", positional_only, depends_on=["x"])


def test_a_positional_only_parameter_with_default_keeps_its_default() -> None:
    wf = Workflow("w")
    wf.add_task("t", positional_only_with_default)
    assert plait.run(wf).outputs == {"t": 7}


def test_params_naming_a_positional_only_parameter_are_a_binding_error() -> None:
    with pytest.raises(BindingError, match=r"^task 't': parameter 'x' is positional-only"):
        Workflow("w").add_task("t", positional_only_with_default, params={"x": 1})


def test_a_parameter_filled_by_both_a_dependency_and_params_is_a_binding_error() -> None:
    wf = Workflow("w")
    wf.add_task("x", one)
    with pytest.raises(BindingError, match=r"^task 't': .*'x'"):
        wf.add_task("t", takes_x, depends_on=["x"], params={"x": 5})


def test_an_unreadable_signature_is_a_binding_error_saying_what_would_fix_it() -> None:
    with pytest.raises(
        BindingError,
        match=r"^task 't': cannot read the signature of <class 'int'>, so plait cannot tell which "
        r"parameters to fill; wrap it in a def or lambda$",
    ):
        Workflow("w").add_task("t", int)


# -- async detection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        async_one,
        functools.partial(async_add, 1, 2),
        functools.partial(functools.partial(async_add, 1), b=2),
        AsyncCallable(),
        AsyncCallable().method,
        functools.partial(AsyncCallable()),
    ],
    ids=[
        "async def",
        "partial of async def",
        "nested partial of async def",
        "object with async __call__",
        "bound async method",
        "partial of object with async __call__",
    ],
)
def test_async_callables_are_detected_as_async(fn: Callable[..., Any]) -> None:
    assert Workflow("w").add_task("t", fn).is_async is True


@pytest.mark.parametrize(
    "fn",
    [
        one,
        lambda: 1,
        functools.partial(sync_add, 1, 2),
        SyncCallable(),
        SyncCallable().method,
        AsyncCallable,
        async_generator,
        print,
    ],
    ids=[
        "def",
        "lambda",
        "partial of def",
        "object with sync __call__",
        "bound sync method",
        "class whose instances are async callables",
        "async generator function",
        "builtin",
    ],
)
def test_sync_callables_are_not_async(fn: Callable[..., Any]) -> None:
    assert Workflow("w").add_task("t", fn).is_async is False


# -- the tasks mapping --------------------------------------------------------------------------


def test_tasks_keep_the_order_they_were_added_in() -> None:
    wf = Workflow("w")
    for task_id in ["c", "a", "b"]:
        wf.add_task(task_id, one)
    assert list(wf.tasks) == ["c", "a", "b"]
    assert [spec.id for spec in wf.tasks.values()] == ["c", "a", "b"]


def test_tasks_are_read_only() -> None:
    wf = Workflow("w")
    spec = wf.add_task("a", one)
    with pytest.raises(TypeError):
        wf.tasks["b"] = spec  # type: ignore[index]
    with pytest.raises(TypeError):
        del wf.tasks["a"]  # type: ignore[attr-defined]
    assert list(wf.tasks) == ["a"]


def test_tasks_view_follows_later_additions() -> None:
    wf = Workflow("w")
    view = wf.tasks
    wf.add_task("a", one)
    assert list(view) == ["a"]


def test_workflow_len_contains_and_repr() -> None:
    wf = Workflow("etl")
    wf.add_task("a", one)
    wf.add_task("b", two)
    assert len(wf) == 2
    assert "a" in wf
    assert "z" not in wf
    assert repr(wf) == "<Workflow 'etl' with 2 tasks>"


# -- end to end: bound values arrive ------------------------------------------------------------


def test_dependency_outputs_and_params_arrive_in_a_run() -> None:
    wf = Workflow("w")

    @wf.task
    def base() -> int:
        return 10

    @wf.task
    def offset() -> int:
        return 3

    @wf.task(depends_on=[base, offset], params={"factor": 2})
    def combine(base: int, offset: int, factor: int, label: str = "sum") -> tuple[str, int]:
        return label, base * factor + offset

    result = plait.run(wf, retry_failed_tasks=False)
    assert result.outputs == {"base": 10, "offset": 3, "combine": ("sum", 23)}


def test_the_context_carries_task_id_run_id_and_attempt() -> None:
    wf = Workflow("w")
    seen: list[tuple[str, str, int]] = []

    @wf.task(retry=RetryPolicy(max_retries=2, backoff=0, jitter=0))
    def flaky(ctx: Context) -> str:
        seen.append((ctx.run_id, ctx.task_id, ctx.attempt))
        if ctx.attempt < 3:
            raise RuntimeError("not yet")
        return ctx.idempotency_key

    result = plait.run(wf, run_id="run-7")
    assert result.tasks["flaky"].status is TaskStatus.SUCCEEDED
    assert result.tasks["flaky"].attempts == 3
    assert seen == [("run-7", "flaky", 1), ("run-7", "flaky", 2), ("run-7", "flaky", 3)]
    assert result.outputs == {"flaky": "run-7/flaky"}


def test_an_annotated_context_parameter_receives_a_context_in_a_run() -> None:
    wf = Workflow("w")

    @wf.task
    def who(me: Context) -> tuple[str, int]:
        assert isinstance(me, Context)
        return me.task_id, me.attempt

    assert plait.run(wf).outputs == {"who": ("who", 1)}


def test_a_postponed_context_annotation_receives_a_context_in_a_run() -> None:
    task = _postponed(
        """
        import plait
        def task(context: plait.Context) -> str:
            return type(context).__name__ + ":" + context.task_id
        """
    )["task"]
    wf = Workflow("w")
    wf.add_task("t", task)
    assert plait.run(wf).outputs == {"t": "Context:t"}


def test_var_keyword_receives_extra_params_in_a_run() -> None:
    wf = Workflow("w")
    wf.add_task("t", takes_kwargs, params={"x": 4, "mode": "fast"})
    assert plait.run(wf).outputs == {"t": {"x": 4, "mode": "fast"}}


def test_async_tasks_receive_dependency_outputs_params_and_context() -> None:
    wf = Workflow("w")

    @wf.task
    async def first() -> int:
        return 5

    @wf.task(depends_on=[first])
    def second(first: int) -> int:
        return first + 1

    @wf.task(depends_on=[first, second], params={"scale": 10})
    async def third(first: int, second: int, scale: int, ctx: Context) -> tuple[int, str]:
        return (first + second) * scale, ctx.task_id

    assert wf.tasks["third"].is_async
    result = plait.run(wf, run_id="r")
    assert result.outputs == {"first": 5, "second": 6, "third": (110, "third")}


def test_partial_and_callable_objects_run_with_their_bound_values() -> None:
    wf = Workflow("w")
    wf.add_task("a", one)
    wf.add_task("p", functools.partial(async_add, b=100), depends_on=["a"])
    wf.add_task("c", AsyncCallable())
    wf.add_task("s", SyncCallable().method)
    assert plait.run(wf).outputs == {"a": 1, "p": 101, "c": 1, "s": 2}


def test_a_function_can_be_added_as_several_tasks_with_different_params() -> None:
    wf = Workflow("w")
    for n in range(3):
        wf.add_task(f"t{n}", takes_x, params={"x": n})
    assert plait.run(wf).outputs == {"t0": 0, "t1": 1, "t2": 2}


def test_var_keyword_receives_the_outputs_of_dependencies_not_named() -> None:
    wf = Workflow("w")
    wf.add_task("build-app", lambda: "app")
    wf.add_task("x", lambda: 1)

    def deploy(x: int, **inputs: Any) -> tuple[int, dict[str, Any]]:
        return x, inputs

    wf.add_task("deploy", deploy, depends_on=["build-app", "x"])
    assert plait.run(wf).outputs["deploy"] == (1, {"build-app": "app"})
