"""Run a command whose DNS is a table of TXT records: its own network and mount namespace, a resolver on 127.0.0.1.

    unshare --net --mount -- python tests/dns_sandbox.py RECORDS_JSON COMMAND...

Verifiers such as opendkim-testmsg look DKIM keys up in DNS with no way to pass a key; inside the
namespaces /etc/resolv.conf names a server answering from RECORDS_JSON ({name: TXT value}), and
nothing outside (the machine's resolver, other tests) is touched.
"""

from __future__ import annotations

import fcntl
import json
import socket
import struct
import subprocess
import sys
import tempfile
import threading

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
TXT, NXDOMAIN = 16, 3


def loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH22x", b"lo", 0))[:18])[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def answer(query: bytes, records: dict[str, str]) -> bytes:
    """The reply to one DNS query: the TXT record asked for, split into 255-byte strings, or NXDOMAIN."""
    ident, flags = struct.unpack("!HH", query[:4])
    labels, i = [], 12
    while query[i]:
        labels.append(query[i + 1 : i + 1 + query[i]].decode("ascii").lower())
        i += 1 + query[i]
    qtype = struct.unpack("!H", query[i + 1 : i + 3])[0]
    question = query[12 : i + 5]
    value = records.get(".".join(labels)) if qtype == TXT else None
    reply_flags = 0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | (0 if value else NXDOMAIN)
    head = struct.pack("!HHHHHH", ident, reply_flags, 1, 1 if value else 0, 0, 0)
    if not value:
        return head + question
    data = value.encode("ascii")
    rdata = b"".join(bytes([len(chunk)]) + chunk for chunk in (data[j : j + 255] for j in range(0, len(data), 255)))
    return head + question + b"\xc0\x0c" + struct.pack("!HHIH", TXT, 1, 60, len(rdata)) + rdata


def serve(records: dict[str, str]) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))

    def loop() -> None:
        while True:
            query, peer = server.recvfrom(4096)
            server.sendto(answer(query, records), peer)

    threading.Thread(target=loop, daemon=True).start()


def main() -> int:
    records = {name.lower().rstrip("."): value for name, value in json.loads(sys.argv[1]).items()}
    loopback_up()
    serve(records)
    with tempfile.NamedTemporaryFile("w", suffix=".resolv.conf") as resolv:
        resolv.write("nameserver 127.0.0.1\n")
        resolv.flush()
        subprocess.run(["mount", "--bind", resolv.name, "/etc/resolv.conf"], check=True)
        return subprocess.run(sys.argv[2:], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
