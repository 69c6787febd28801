"""Deliberate crashes for kill-anywhere drills: the rollout SIGKILLs itself at a named point.

With ROLLOUT_CRASH_AT set to a point's name (`intent:<revision>`, `spawned:<revision>`,
`decided:<action>`, `baking`), the process kills itself there, as an OOM kill or a cancelled CI
job would, with no chance to clean up. A re-run must then find every process and apply every
recorded decision. Unset (always, outside drills), a point does nothing.
"""

import os
import signal

CRASH_VARIABLE = "ROLLOUT_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
