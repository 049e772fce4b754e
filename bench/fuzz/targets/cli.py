"""The ``lora-telemetry`` command line (cli/main.py) on mutated argument vectors.

The input is the argument vector, NUL-separated, decoded as the OS decodes argv (UTF-8 with
surrogateescape, so undecodable bytes arrive as lone surrogates). Only the pure subcommands
run: airtime, encode, decode and ``keys list`` (on a key file of the harness, named by a
placeholder so inputs do not depend on the temporary directory); anything else (simulators,
radios, benchmarks, ``keys generate``) is skipped before parsing, so the fuzzer never starts
a process or opens a device. Output goes to streams that encode as a terminal's do (stdout
strict UTF-8, stderr with backslashreplace). Invariants: exit status 0 or 2, no traceback,
and on status 2 an error line: argparse's usage and error, or our own error as one line.
"""

from __future__ import annotations

import contextlib
import io

from lora_telemetry import keyfile
from lora_telemetry.cli import main as cli_main

from bench.fuzz.base import Target, check, lorawan_vectors
from bench.fuzz.targets.config_files import _KEYS, _TempDir, _write_private

PURE = ("airtime", "encode", "decode", "keys")
KEY_FILE = "FUZZ_KEY_FILE"
BAD_KEY_FILE = "FUZZ_BAD_KEY_FILE"


def seeds() -> list[list[str]]:
    """The seed argument vectors. Their keys and frames are public test vectors from
    ../shared/testdata/lorawan_vectors.json (lora-packet's and brocaar/lorawan's tests), read
    here rather than written into the repository: no key lives in code."""
    vectors = {v["id"]: v for v in lorawan_vectors()}
    data, join = vectors["lp-decrypt-test"], vectors["br-joinaccept"]
    nwk, app = data["nwkskey"], data["appskey"]
    return [
        ["airtime", "--sf", "7", "--payload", "29"],
        ["airtime", "--sf", "SF12", "--bw", "125 kHz", "--cr", "4/8", "--payload", "51", "--json"],
        ["airtime", "--sf", "6", "--implicit", "--payload", "10", "--ldro", "on", "--no-crc"],
        ["airtime", "--sf", "9", "--bw", "7.8", "--preamble", "65535", "--payload", "255"],
        ["encode", "--devaddr", "26011CA2", "--fcnt", "1", "--nwkskey", nwk, "--appskey", app,
         "--payload-hex", "4c6f5261"],
        ["encode", "--devaddr", "0x26011CA2", "--fcnt", "70000", "--fport", "0", "--nwkskey", nwk,
         "--payload-hex", "0203", "--confirmed", "--downlink", "--ack", "--json"],
        ["decode", data["phy_hex"], "--nwkskey", nwk, "--appskey", app],
        ["decode", "40a21c01260001000179367c14e385ce96", "--fcnt32", "1", "--json"],
        ["decode", join["phy_hex"][:20], "--appkey", join["appkey"]],
        ["keys", "list", KEY_FILE], ["keys", "list", "--json", BAD_KEY_FILE], ["--version"],
        ["airtime", "--help"],
    ]


TOKENS = tuple(t.encode() for t in (
    "\0", "--json", "--sf", "--cr", "--bw", "--payload", "--fcnt", "--fcnt32", "--fport",
    "--nwkskey", "--appskey", "--appkey", "--payload-hex", "--fopts-hex", "--downlink", "-h",
    "4/", "SF", "\u00b2", "\u0663", "~nosuchuser/keys.yaml", "~", "kHz", "Hz", KEY_FILE,
    BAD_KEY_FILE, "keys", "list", "generate", "=",
)) + (b"\xff", b"\xed\xa0\x80")


def _command(argv: list[str]) -> list[str]:
    """The subcommand words (positionals before the first option argument)."""
    return [a for a in argv if not a.startswith("-")][:2]


class CliTarget(Target):
    name = "cli"
    max_len = 400
    timeout_s = 5.0
    tokens = TOKENS

    def __init__(self) -> None:
        self.tmp = _TempDir()
        self.key_file = self.tmp.path / "keys.yaml"
        keyfile.write_key_file(self.key_file, _KEYS)
        self.bad_key_file = self.tmp.path / "bad.yaml"
        _write_private(self.bad_key_file, b"devices:\n  uav1: {devaddr: [\n\xff")

    def seeds(self) -> list[bytes]:
        return ["\0".join(argv).encode() for argv in seeds()]

    def run(self, data: bytes) -> str:
        argv = data.decode("utf-8", "surrogateescape").split("\0")
        words = _command(argv)
        if words and (words[0] not in PURE or (words[0] == "keys" and words[1:] != ["list"])):
            return "skipped"
        places = {KEY_FILE: str(self.key_file), BAD_KEY_FILE: str(self.bad_key_file)}
        argv = [places.get(a, a) for a in argv]
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
        err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli_main.main(argv)
            except SystemExit as exc:  # argparse: --help, --version, usage errors
                code = exc.code
            out.flush()
            err.flush()
        stderr = err.buffer.getvalue().decode("utf-8")
        check(code in (0, 2), f"exit status {code!r}")
        check("Traceback" not in stderr, "traceback on stderr")
        if code == 2:
            lines = stderr.rstrip("\n").split("\n")
            if stderr.startswith("usage:"):
                # argparse: usage, then "prog: error: ..." (which echoes arguments verbatim,
                # newlines included)
                check(any(" error: " in line for line in lines), f"usage without error: {stderr!r}")
            else:  # our own errors: exactly one line
                check(len(lines) == 1 and " error: " in lines[0], f"not a one-line error: {stderr!r}")
        return f"{(words or ['-'])[0]}:{code}"

    def close(self) -> None:
        self.tmp.close()
