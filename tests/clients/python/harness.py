"""Shared check runner for the Python client scripts in this folder.

Target from the environment: TANDEM_HOST, TANDEM_PORT (required), TANDEM_USER, TANDEM_PASSWORD,
TANDEM_DB (default appdb). Each check prints "ok - name" or "not ok - name: detail".
"""

import os
import sys
import traceback


def target():
    port = os.environ.get("TANDEM_PORT")
    if not port:
        print("TANDEM_PORT is not set", file=sys.stderr)
        sys.exit(2)
    return {
        "host": os.environ.get("TANDEM_HOST", "127.0.0.1"),
        "port": int(port),
        "user": os.environ.get("TANDEM_USER", "app"),
        "password": os.environ.get("TANDEM_PASSWORD", "apppass"),
        "database": os.environ.get("TANDEM_DB", "appdb"),
    }


class Failed(Exception):
    pass


def expect(got, want, what="value"):
    if got != want:
        raise Failed(f"{what}: got {got!r}, want {want!r}")


class Runner:
    def __init__(self, label):
        self.label = label
        self.passed = 0
        self.failed = 0

    def check(self, name, fn):
        """Run fn(); returns True when it passed."""
        try:
            fn()
        except Failed as e:
            print(f"not ok - {name}: {e}", flush=True)
        except Exception as e:  # any driver error is a failed check, not a crash
            last = traceback.extract_tb(e.__traceback__)[-1]
            print(f"not ok - {name}: {type(e).__name__}: {e} (line {last.lineno})", flush=True)
        else:
            print(f"ok - {name}", flush=True)
            self.passed += 1
            return True
        self.failed += 1
        return False

    def finish(self):
        print(f"{self.label}: {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(0 if self.failed == 0 else 1)
