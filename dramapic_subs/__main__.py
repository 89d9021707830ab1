"""``python -m dramapic_subs`` runs the command line."""
from .cli import main

main()
