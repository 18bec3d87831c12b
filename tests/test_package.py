"""The package's public names: the contract's verbs stay functions whatever imports what."""
import importlib
import subprocess
import sys


def test_contract_names_are_functions_even_after_submodule_imports():
    code = (
        "import rnnviz_core.trace, rnnviz_core.contributions, rnnviz_core.engine\n"
        "import rnnviz_core as rv\n"
        "from rnnviz_core.trace import Trace\n"
        "assert callable(rv.trace) and rv.trace.__name__ == 'trace', rv.trace\n"
        "assert callable(rv.contributions) and rv.contributions.__name__ == 'contributions'\n"
        "assert callable(rv.load_model) and callable(rv.predict)\n"
        "assert rv.trajectories.StatePCA is not None\n"
        "import sys; assert 'streamlit' not in sys.modules\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_core_never_imports_streamlit():
    import pathlib

    root = pathlib.Path(importlib.import_module("rnnviz_core").__file__).parent
    offenders = [
        str(p) for p in root.rglob("*.py")
        if any(line.strip().startswith(("import streamlit", "from streamlit")) for line in p.read_text().splitlines())
    ]
    assert offenders == []


def test_every_submodule_and_export_named_by_the_package_resolves():
    code = (
        "import importlib, types\nimport rnnviz_core as rv\n"
        "for name in sorted(rv._SUBMODULES):\n"
        "    assert isinstance(getattr(rv, name), types.ModuleType), name\n"
        "for name in sorted(rv._EXPORTS):\n"
        "    mod = importlib.import_module('rnnviz_core.' + rv._EXPORTS[name])\n"
        "    assert getattr(rv, name) is getattr(mod, name), name\n"
        "assert callable(rv.bundle.build) and callable(rv.pairing.readout_choices)\n"
        "import sys; assert 'streamlit' not in sys.modules\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
