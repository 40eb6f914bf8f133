"""Checks the DKIM signature of one email with dkimpy, a verifier that
shares nothing with comms, given the DNS record that email-service
publishes (GET /api/v1/dkim) instead of asking DNS.

    python verify.py NAME TXT < message.eml

NAME is the record's name (<selector>._domainkey.<domain>) and TXT its
value. Prints one JSON object: whether the signature verifies, and its
tags (a, c, d, s, h); exits 0 either way, 2 when there is no signature.
"""

import json
import sys

import dkim


def main():
    name, txt = sys.argv[1], sys.argv[2]
    asked = []

    def dns(qname, timeout=5):
        if isinstance(qname, bytes):
            qname = qname.decode("ascii")
        asked.append(qname)
        if qname.rstrip(".").lower() == name.lower():
            return txt.encode("ascii")
        return None

    message = sys.stdin.buffer.read()
    checker = dkim.DKIM(message)
    try:
        valid = bool(checker.verify(dnsfunc=dns))
        error = None
    except dkim.DKIMException as failure:
        valid = False
        error = str(failure)
    fields = getattr(checker, "signature_fields", None) or {}
    if not fields:
        print(json.dumps({"valid": False, "error": error or "no DKIM-Signature"}))
        sys.exit(2)
    tags = {
        key.decode(): fields[key].decode(errors="replace")
        for key in (b"a", b"c", b"d", b"s", b"h")
        if key in fields
    }
    print(json.dumps({"valid": valid, "error": error, "asked": asked, **tags}))


if __name__ == "__main__":
    main()
