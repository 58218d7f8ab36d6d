"""The README's Python examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_examples_run(log_db, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    examples = [block for block in blocks if "EVENTSOURCING = {" not in block]
    assert len(examples) == 2
    namespace: dict = {}
    for example in examples:
        exec(compile(example, str(README), "exec"), namespace)
    assert "1 2" in capsys.readouterr().out  # the conflict's expected and actual versions
    assert str(namespace["orders"].load(namespace["order"].id).paid) == "13.50"
