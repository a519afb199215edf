"""supervisord event listener that writes the local tree's combined log (var/log/linli.log).

Every line a process writes arrives as a PROCESS_LOG event and is appended as
`HH:MM:SS name | line`, the form honcho used, so `make logs` shows the whole tree in one place;
supervisord's state changes (a process exited, is backing off, is running again) are written
among them as `HH:MM:SS supervisord | ...`. Each process's own file (var/log/<name>.log) is kept
by supervisord itself and holds everything even if this listener falls behind.

    supervisor_logs.py LOGFILE [NAME_WIDTH]

stdout is supervisord's event protocol (READY, RESULT): nothing else may be written to it.
"""
import sys
import time


def _fields(line):
    return dict(word.split(":", 1) for word in line.split() if ":" in word)


class CombinedLog:
    def __init__(self, out, width=0, clock=time.localtime):
        self.out = out
        self.width = width
        self.clock = clock
        self.partial = {}  # (process, channel) -> the start of a line not yet ended

    def write(self, name, text):
        stamp = time.strftime("%H:%M:%S", self.clock())
        self.out.write(f"{stamp} {name.ljust(self.width)} | {text}\n")

    def handle(self, event, payload):
        """One event: its name (eventname from the header) and its payload (bytes)."""
        if event.startswith("PROCESS_LOG"):
            head, _, data = payload.partition(b"\n")
            fields = _fields(head.decode("utf-8", "replace"))
            key = (fields.get("processname", "?"), fields.get("channel", ""))
            text = self.partial.pop(key, "") + data.decode("utf-8", "replace")
            *lines, rest = text.split("\n")
            if rest:
                self.partial[key] = rest
            for line in lines:
                self.write(key[0], line)
        elif event.startswith("PROCESS_STATE_"):
            fields = _fields(payload.decode("utf-8", "replace"))
            name, pid, tries = fields.get("processname", "?"), fields.get("pid"), fields.get("tries")
            said = {
                "PROCESS_STATE_RUNNING": f"{name} running (pid {pid})",
                "PROCESS_STATE_EXITED": f"{name} exited (pid {pid}); starting it again",
                # supervisord waits one second more after each try that died while starting.
                "PROCESS_STATE_BACKOFF": f"{name} died while starting (try {tries}); next try in {tries} s",
                "PROCESS_STATE_FATAL": f"{name} gave up after too many tries; "
                                       f"start it with supervisorctl -c var/run/supervisord.conf start linli:{name}",
                "PROCESS_STATE_STOPPED": f"{name} stopped",
            }.get(event)
            if said:
                self.write("supervisord", said)
        self.out.flush()


def main(argv):
    path = argv[1]
    width = int(argv[2]) if len(argv) > 2 else 0
    stdin, stdout = sys.stdin.buffer, sys.stdout
    with open(path, "a", encoding="utf-8") as out:
        log = CombinedLog(out, width)
        while True:
            stdout.write("READY\n")
            stdout.flush()
            header = stdin.readline()
            if not header:
                return  # supervisord closed the pipe: it is shutting down
            fields = _fields(header.decode())
            payload = stdin.read(int(fields["len"]))
            try:
                log.handle(fields.get("eventname", ""), payload)
            except Exception as exc:  # a bad event must not stop the log; say so where it is read
                print(f"supervisor_logs: {fields.get('eventname')}: {exc!r}", file=sys.stderr, flush=True)
            stdout.write("RESULT 2\nOK")
            stdout.flush()


if __name__ == "__main__":
    main(sys.argv)
