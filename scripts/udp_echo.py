#!/usr/bin/env python3
"""udp_echo.py HOST TEXT: sends TEXT to HOST:7 and prints what comes back (exit 1 if nothing)."""
import socket
import sys

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(sys.argv[2].encode(), (sys.argv[1], 7))
try:
    print("echoed:", s.recvfrom(2048)[0].decode())
except socket.timeout:
    print("no echo", file=sys.stderr)
    sys.exit(1)
