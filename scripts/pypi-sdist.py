#!/usr/bin/env python3
"""Download one pinned source distribution from the Python package index pip is set up for.

Usage: pypi-sdist.py PROJECT FILENAME SHA256 DEST_DIR

`pip download` cannot fetch some old sdists (it tries to build their metadata and fails), so
this asks pip's index (PEP 691 JSON, the same index and certificate settings pip uses) for the
file's address, downloads it, and checks its sha256 before it lands in DEST_DIR.
"""
import hashlib
import json
import os
import ssl
import sys
import tempfile
import urllib.request


def index_url():
    for var in ("PIP_INDEX_URL",):
        if os.environ.get(var):
            return os.environ[var].rstrip("/")
    try:
        from pip._internal.configuration import Configuration

        conf = Configuration(isolated=False)
        conf.load()
        for key in ("global.index-url", ":env:.index-url", "install.index-url", "download.index-url"):
            try:
                return conf.get_value(key).rstrip("/")
            except Exception:
                pass
    except Exception:
        pass
    from pip._internal.models.index import PyPI

    return PyPI.simple_url.rstrip("/")


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    project, filename, sha256, dest = sys.argv[1:]
    target = os.path.join(dest, filename)
    if os.path.exists(target):
        with open(target, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() == sha256:
                return
    ctx = ssl.create_default_context(cafile=os.environ.get("PIP_CERT") or None)
    req = urllib.request.Request(
        f"{index_url()}/{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(req, context=ctx, timeout=120) as r:
        files = json.load(r)["files"]
    match = [f for f in files if f["filename"] == filename]
    if not match:
        sys.exit(f"pypi-sdist: {project}: no file {filename} on the index")
    h = hashlib.sha256()
    os.makedirs(dest, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(match[0]["url"], context=ctx, timeout=300) as r:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != sha256:
            sys.exit(f"pypi-sdist: {filename}: sha256 mismatch: expected {sha256}, got {h.hexdigest()}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


if __name__ == "__main__":
    main()
