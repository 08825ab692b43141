"""What every test shares: the signals tests send to child processes reach them as from a
terminal.

A suite started under ``nohup``, or as a background job of a non-interactive shell, inherits
SIGHUP or SIGINT ignored, and a child process started with a signal ignored keeps ignoring it
(plait leaves an ignored signal alone, as ``nohup`` asks). So the suite's own process takes the
default dispositions back, and the children it starts get them.
"""

import signal

for _signum, _handler in (
    (signal.SIGHUP, signal.SIG_DFL),
    (signal.SIGINT, signal.default_int_handler),
):
    if signal.getsignal(_signum) is signal.SIG_IGN:
        signal.signal(_signum, _handler)
