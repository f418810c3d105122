"""operations.util.factcache through the real pyinfra CLI on @local: reads counted on disk."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    from pyinfra import host
    from pyinfra.api import FactBase, StringCommand, operation
    from pyinfra.api.command import QuoteString


    class Content(FactBase):
        # Every read leaves a line in the log, so the test counts reads.
        def command(self, path, log):
            return StringCommand(
                "echo read >>", QuoteString(log), "; cat", QuoteString(path), "2>/dev/null || true"
            )

        def process(self, output):
            return "\\n".join(output)


    @operation()
    def content(path, text, log):
        if host.get_fact(Content, path=path, log=log) == text:
            host.noop(f"{path} holds {text}")
            return
        yield StringCommand("echo", QuoteString(text), ">", QuoteString(path))


    @operation()
    def copied(src, dst, log):
        text = host.get_fact(Content, path=src, log=log)
        if host.get_fact(Content, path=dst, log=log) == text:
            host.noop(f"{dst} equals {src}")
            return
        yield StringCommand("cp", QuoteString(src), QuoteString(dst))
    """
)


def converge(tmp_path: Path, body: str, cache: bool) -> None:
    (tmp_path / "probe.py").write_text(PROBE)
    enable = "from operations.util import factcache\nfactcache.enable(state)\n" if cache else ""
    deploy = "from pyinfra import state\nimport probe\n" + enable + textwrap.dedent(body)
    (tmp_path / "deploy.py").write_text(deploy)
    env = dict(os.environ, PYTHONPATH=f"{REPO}:{tmp_path}")
    pyinfra = Path(sys.executable).with_name("pyinfra")
    result = subprocess.run(
        [str(pyinfra), "-y", "@local", "deploy.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def reads(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_a_no_op_reads_each_fact_once_instead_of_twice(tmp_path: Path) -> None:
    target, log = tmp_path / "target", tmp_path / "reads.log"
    target.write_text("a\n")
    # Deploy code that asks whether an operation will change something (deploys/k3s.py does)
    # runs its generator while the deploy loads; pyinfra runs it again to execute it.
    body = f"""
    op = probe.content(name='a', path={str(target)!r}, text='a', log={str(log)!r})
    assert not op.will_change
    """

    converge(tmp_path, body, cache=False)
    without = reads(log)
    log.unlink()
    converge(tmp_path, body, cache=True)

    assert (without, reads(log)) == (2, 1)


def test_after_a_change_facts_are_read_live_again(tmp_path: Path) -> None:
    # Planned against the old state, `copied` has nothing to do; once `content` has changed the
    # source, it must see the new content and copy it.
    src, dst, log = tmp_path / "src", tmp_path / "dst", tmp_path / "reads.log"
    src.write_text("a\n")
    dst.write_text("a\n")
    body = f"""
    assert probe.content(name='src', path={str(src)!r}, text='b', log={str(log)!r}).will_change
    assert not probe.copied(name='cp', src={str(src)!r}, dst={str(dst)!r}, log={str(log)!r}).will_change
    """

    converge(tmp_path, body, cache=True)

    assert dst.read_text() == "b\n"
