#!/usr/bin/python3
"""tmpipe bench/calib: wall time and peak RSS of a command, for machines
without GNU time (/usr/bin/time, Debian package `time`).

    /usr/bin/python3 bench/observers/measure.py OUT CMD [ARG]...

Runs CMD, waits for it, and writes "<wall s> <peak RSS KiB>" to OUT, the
same two numbers as `/usr/bin/time -f "%e %M" -o OUT`. The peak RSS is
resource.getrusage(RUSAGE_CHILDREN).ru_maxrss after the wait. The kernel
keeps the larger of the child's peak before its exec (the forked copy of
this interpreter, about 7 MB) and after: a number above that floor is
the command's own peak, one at the floor means "at most that".
bench/calib measures `true` this way and prints the floor. Exits with
CMD's status.
"""
import os
import resource
import sys
import time


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: measure.py OUT CMD [ARG]...")
    out, cmd = sys.argv[1], sys.argv[2:]
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    wall = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(out, "w") as f:
        f.write("%.4f %d\n" % (wall, rss))
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
