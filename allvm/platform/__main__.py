"""`python -m allvm.platform`: warm what the first links need (the set-up runs it once)."""

from allvm.platform import warm

warm()
