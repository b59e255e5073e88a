"""One module per ``personalab`` subcommand; each defines ``register(subparsers)`` that sets ``func``."""
