"""Real Unix accounts for tests that play a course server: students and an instructor, each running commands
as themselves (runuser), with their own home, and deleted afterwards.

The course server's Python must be readable by every account. Where it is not (here the interpreter lives
under /root, mode 0700), `Accounts` shows the accounts only that installation: each command runs in a private
mount namespace where the unreadable folder (/root) is an empty tmpfs holding just the folders the commands
need (/root/.pyenv). Nothing changes on the host, and every other permission is the real one.
"""
from __future__ import annotations

import os
import secrets
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

TOOLS = ("useradd", "userdel", "runuser", "unshare", "mount")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def hidden_from_others(path: Path) -> tuple[Path, Path] | None:
    """(the first folder above `path` that other users cannot enter, its child on the way to `path`), or None."""
    path = Path(os.path.abspath(path))
    chain = [*reversed(path.parents), path]  # /, /root, /root/.pyenv, ..., path
    for parent, child in zip(chain, chain[1:]):
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return parent, child
    return None


@dataclass
class Account:
    name: str
    uid: int
    gid: int
    home: Path


class Accounts:
    """Accounts made with useradd, named `<prefix>-<role>-<random>`, removed (userdel -r) on close, even after a
    failure. `needs`: the paths (interpreter, venv, kit, data) every account must be able to read."""

    def __init__(self, prefix: str, needs: list[Path], hold: Path):
        self.prefix = prefix
        self.suffix = secrets.token_hex(3)
        self.made: list[Account] = []
        self.exposed: list[tuple[Path, Path]] = []
        for path in needs:
            hidden = hidden_from_others(path)
            if hidden and hidden not in self.exposed:
                self.exposed.append(hidden)
        self.hold = hold
        for index in range(len(self.exposed)):
            (hold / str(index)).mkdir(parents=True, exist_ok=True)

    def add(self, role: str) -> Account:
        import pwd

        name = f"{self.prefix}-{role}-{self.suffix}"
        subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/sh", name],
                       check=True, capture_output=True)
        entry = pwd.getpwnam(name)
        account = Account(name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))
        self.made.append(account)
        os.chmod(account.home, 0o700)  # a course server's homes are private
        return account

    def _mounts(self) -> str:
        """The shell lines that show the accounts only the needed folders of an unreadable one."""
        lines = []
        for index, (_, child) in enumerate(self.exposed):
            lines.append(f"mount --bind {shlex.quote(str(child))} {shlex.quote(str(self.hold / str(index)))}")
        for parent in dict.fromkeys(parent for parent, _ in self.exposed):
            lines.append(f"mount -t tmpfs -o mode=0755,size=1m cnn-kit-test {shlex.quote(str(parent))}")
        for index, (_, child) in enumerate(self.exposed):
            lines.append(f"mkdir -p {shlex.quote(str(child))}")
            lines.append(f"mount --bind {shlex.quote(str(self.hold / str(index)))} {shlex.quote(str(child))}")
        return " && ".join(lines)

    def command(self, account: Account, argv: list[str], env: dict[str, str]) -> list[str]:
        """`argv` as `account`, with only `env` (plus HOME, USER, LOGNAME) in its environment."""
        env = {"HOME": str(account.home), "USER": account.name, "LOGNAME": account.name, **env}
        inner = ["runuser", "-u", account.name, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv]
        if not self.exposed:
            return inner
        return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                self._mounts() + ' && exec "$@"', "sh", *inner]

    def run(self, account: Account, argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 300,
            check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(self.command(account, argv, env), cwd=cwd, capture_output=True, text=True,
                              timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"{account.name}$ {shlex.join(argv)} (in {cwd}) exited {done.returncode}:\n"
                                 f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        return done

    def close(self) -> None:
        errors = []
        for account in reversed(self.made):
            done = subprocess.run(["userdel", "--remove", account.name], capture_output=True, text=True)
            if done.returncode not in (0, 12):  # 12: the home could not be removed (already gone)
                errors.append(f"userdel {account.name}: {done.stderr.strip()}")
        self.made.clear()
        if errors:
            print("\n".join(errors), file=sys.stderr)
