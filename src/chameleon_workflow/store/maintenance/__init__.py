"""SQL of the background services: set-based sweeps, decay, toxic marks and run records.

Every sweep works in batches; each batch is one conditional statement that re-checks the
condition it selected on, so concurrent sweeps (and racing lease holders) never double-apply.
"""
