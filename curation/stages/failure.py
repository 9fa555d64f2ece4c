"""Which failures are the data's and which are the run's.

A data error (an undecodable file, a model refusing one input, a bad value in one row) is a reject with a reason: the
row ends in rejects.parquet and the run goes on. An infrastructure error (out of memory, a missing import, an
attribute error from a bug, a CUDA error) or a model that fails most rows is the run's: the stage raises
`StageFailure`, Ray retries the task, and the run stops with one line naming the stage, the error and the count,
instead of turning every row into a `*_failed` reject and reporting success.

`Breaker` tells the two apart by counting: each stage object (one per process: an actor, a task, the sequential
executor) counts the rows it tried and the rows that failed; once more than `failure.max_fraction` of
`failure.window` rows have failed, the stage raises with the most common error. Counting within the first window only
(failures later in a long run are data, not a broken model) keeps a bad tail of inputs from stopping a run that
has shown its models work.
"""

from __future__ import annotations

from collections import Counter

from schemas.config import FailureConfig

# errors no single input can cause: the process, the environment or the code is broken
_INFRASTRUCTURE = (MemoryError, ImportError, AttributeError, NameError, NotImplementedError, RecursionError)
_INFRASTRUCTURE_WORDS = ("out of memory", "CUDA error", "CUBLAS_STATUS", "CUDNN_STATUS", "NCCL error")


class StageFailure(RuntimeError):
    """A stage that cannot go on: the run stops. The message is one line: stage, error, count."""

    PATTERN = r"^stage \w+ failed: "  # what its message starts with (how Ray Data is told to retry it)

    def __init__(self, stage: str, error: str, count: str):
        super().__init__(f"stage {stage} failed: {error} ({count})")
        self.stage, self.error, self.count = stage, error, count

    def __reduce__(self):  # crosses process boundaries (Ray) with its fields
        return StageFailure, (self.stage, self.error, self.count)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def is_infrastructure(exc: BaseException) -> bool:
    """Whether `exc` says the process, environment or code is broken rather than one input bad."""
    if isinstance(exc, (StageFailure, *_INFRASTRUCTURE)):
        return True
    # torch.cuda.OutOfMemoryError and CUDA runtime errors are RuntimeErrors: known by name and message
    text = f"{type(exc).__name__} {exc}"
    return "OutOfMemory" in type(exc).__name__ or any(w in text for w in _INFRASTRUCTURE_WORDS)


class Breaker:
    """Counts one stage's row outcomes in this process and stops the stage on an infrastructure error, or when more
    than `max_fraction` of its first `window` rows failed."""

    def __init__(self, stage: str, cfg: FailureConfig):
        self.stage, self.cfg = stage, cfg
        self.tried = 0
        self.failed = 0
        self.errors: Counter[str] = Counter()

    def ok(self, rows: int = 1) -> None:
        self.tried += rows

    def failure(self, exc: BaseException, rows: int = 1) -> None:
        """Count a failure of `rows` rows; raise `StageFailure` when it is the run's, return when it is the data's."""
        if isinstance(exc, StageFailure):
            raise exc
        if is_infrastructure(exc):
            raise StageFailure(self.stage, describe(exc), f"infrastructure error on a batch of {rows} rows") from exc
        in_window = max(0, min(rows, self.cfg.window - self.tried))
        self.tried += rows
        self.failed += in_window
        self.errors[describe(exc)] += rows
        if self.failed > self.cfg.max_fraction * self.cfg.window:
            error, n = self.errors.most_common(1)[0]
            raise StageFailure(
                self.stage,
                error,
                f"{self.failed} of the first {min(self.tried, self.cfg.window)} rows failed, "
                f"{n} with this error; more than failure.max_fraction {self.cfg.max_fraction:g} of failure.window "
                f"{self.cfg.window}",
            ) from exc
