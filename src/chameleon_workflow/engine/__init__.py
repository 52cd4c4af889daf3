"""Engine operations on top of the storage seam."""
