"""The pure domain: statuses, definitions, the policy language and errors.

Nothing here imports a database, web or CLI library.
"""
