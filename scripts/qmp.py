#!/usr/bin/env python3
"""Tiny QMP client for scripts: qmp.py SOCKET COMMAND [JSON-ARGUMENTS]; prints the return value."""
import json
import socket
import sys


def main():
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    f = s.makefile("rw")
    f.readline()  # greeting
    for cmd, args in (("qmp_capabilities", None), (sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)):
        msg = {"execute": cmd}
        if args:
            msg["arguments"] = json.loads(args)
        f.write(json.dumps(msg) + "\n")
        f.flush()
        while True:
            reply = json.loads(f.readline())
            if "event" not in reply:
                break
    if "error" in reply:
        print(reply["error"]["desc"], file=sys.stderr)
        sys.exit(1)
    print(json.dumps(reply["return"]))


if __name__ == "__main__":
    main()
