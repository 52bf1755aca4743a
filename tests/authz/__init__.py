"""Authorization rules of each app's routes, merged into tests/test_authorization_matrix.py.

A module here exports ``RULES: dict[str, list[Rule]]`` (import ``Rule`` and ``static`` from
``tests.authz._base``).
"""
