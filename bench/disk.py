"""Block replication: what it costs a guest's 4 KiB write.

    disk.plain.write_4k.*          a raw image file
    disk.replicated.write_4k.*     the primary's mirror: local image + NBD to the
                                   secondary (copy-before-write into its hidden overlay)
    disk.replicated_over_plain.*   the ratio of the p50s, measured side by side

Both ends run on this host over a socketpair (build/bench/repl_write): the figure is
the software's cost; a real link adds its round trip (DRBD protocol C pays the same).
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run import emit  # noqa: E402


def main():
    out = subprocess.run([os.path.join(HERE, "..", "build", "bench", "repl_write")], check=True,
                         capture_output=True, text=True, timeout=300).stdout
    for name, value, unit in re.findall(r"bench: (\S+) ([\d.]+) (\S+)", out):
        emit(name, float(value), unit)


if __name__ == "__main__":
    main()
