"""Reads MLIR on stdin, extracts every `bin = "..."` blob of #gpu.object, and
checks each is an ELF for NVIDIA CUDA (e_machine 190) whose flags name the
expected SM (argv[1], e.g. sm_90a). Prints a one-line summary; exits 1 if any
blob is not a valid cubin."""

import re
import struct
import sys

want = sys.argv[1]
text = sys.stdin.read()
blobs = re.findall(r'bin = "((?:[^"\\]|\\.)*)"', text)


def unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        if s[i] == "\\":
            nxt = s[i + 1]
            if nxt in '\\"':
                out.append(ord(nxt))
                i += 2
            else:
                out.append(int(s[i + 1 : i + 3], 16))
                i += 3
        else:
            out.append(ord(s[i]))
            i += 1
    return bytes(out)


sm = int(re.match(r"sm_(\d+)", want).group(1))
bad = 0
for blob in blobs:
    data = unescape(blob)
    ok = data[:4] == b"\x7fELF" and struct.unpack_from("<H", data, 18)[0] == 190
    # e_flags (offset 48 in ELF64) carries the SM number in its low byte(s).
    flags = struct.unpack_from("<I", data, 48)[0] if ok else 0
    ok = ok and ((flags & 0xFF) == sm or ((flags >> 8) & 0xFF) == sm)
    bad += not ok
if not blobs or bad:
    print(f"{len(blobs)} blobs, {bad} invalid")
    sys.exit(1)
print(f"{len(blobs)} cubins, all ELF for {want}")
