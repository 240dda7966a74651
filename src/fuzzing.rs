//! Checking code shared by the fuzz targets and the corpus tests (not a stable API).
