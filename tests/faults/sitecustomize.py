"""Arms the test-only faults in every Python process started with this folder on
``PYTHONPATH`` (the worker processes of a test using the ``faults`` fixture of
``tests/test_workers.py``, the runs of ``tests/test_journal.py``); see
``fault_injection.py`` and ``stop_at.py`` next to it. Nothing in the product
refers to this file."""

import fault_injection
import stop_at

fault_injection.install_import_hook()
stop_at.install_from_environment()
