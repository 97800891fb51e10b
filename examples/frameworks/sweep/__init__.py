"""sweep: a parameter sweep with its own executor (docs/framework-api.md, "Executors").

The scheduler (``scheduler.py``, on the framework kit) starts one long-lived executor
per agent (``executor.py``, on ``mesoslite.executor``) and feeds it many short tasks,
one point of a grid each; the executor evaluates the point and sends the result back
as a framework message, and again, reliably, in the task's TASK_FINISHED update.
``points.py`` is what both halves share: the grid, the function and the wire format.

    python examples/frameworks/sweep --master http://127.0.0.1:5050 --points 100
"""
