"""`annotate-prm` as a small package, one job a module.

- `rollouts`: the shared rollout service (search, prompt, parse, verdict cache) both schedulers use;
- `lockstep`: the lock-step `RoundScheduler` (a batch `Work.process`);
- `async_scheduler`: the event-driven `AsyncScheduler` (a `Work.stream`);
- `stage`: reading problems or traces, the rows a search writes, and the `Stage` run by the runner;
- `params`: the command's parameters, declared once (CLI, recipes, Python API).
"""
