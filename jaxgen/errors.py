"""Exceptions the CLI turns into one line on stderr and a distinct exit status, never a traceback."""

# Exit statuses of `jaxgen` (README "What a long run can count on").
EXIT_USAGE = 2  # a mistake the user can fix: bad flag, value or file
EXIT_DIVERGED = 3  # training produced non-finite numbers: stopped, nothing bad saved
EXIT_INTERRUPTED = 75  # SIGINT/SIGTERM: checkpoint saved, run the same command to resume (EX_TEMPFAIL)


class UserError(Exception):
    """A mistake the user can fix (bad flag, bad value, missing file); the message names the fix."""

    exit_code = EXIT_USAGE


class Diverged(UserError):
    """Parameters or optimizer state became NaN/inf; the message names the step and last good checkpoint."""

    exit_code = EXIT_DIVERGED


class Interrupted(UserError):
    """Stopped by a signal after saving a checkpoint: rerunning the same command resumes."""

    exit_code = EXIT_INTERRUPTED
