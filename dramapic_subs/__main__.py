"""``python -m dramapic_subs`` runs the command line."""
from . import main

main()
