"""The bundled suites: ``pytest --hft-cluster=local --pyargs pytest_hftk8s.suites``.

Test modules only; they use the plugin's fixtures and markers and nothing private.
"""
