"""The seeds' data-quality checklist, one module per family of checks.

Every check returns a CheckResult: a status (pass, warn, fail), a one-line finding, how to fix
it, and the 1-based line numbers of the input file it concerns (groups, such as duplicates, as
lists of lists), so a person can go straight to the records.
"""
