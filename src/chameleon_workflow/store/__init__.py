"""The storage seam: tables, connections and every SQL statement the engine runs."""
