"""Arms the test-only faults in every Python process started with this folder on
``PYTHONPATH`` (the worker processes of a test using the ``faults`` fixture of
``tests/test_workers.py``); see ``fault_injection.py`` next to it. Nothing in the
product refers to this file."""

import fault_injection

fault_injection.install_import_hook()
