import subprocess
import sys

import pytest

from facenb import __version__
from facenb.cli import main


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_unknown_option_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["now", "--bogus"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("facenb: error:") and len(err.splitlines()) == 1


def test_console_script_version():
    out = subprocess.run([sys.executable, "-m", "facenb.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout
