"""Only what the repository's own tests need: the pytester fixture for testing the plugin in a subprocess."""

pytest_plugins = ["pytester"]
