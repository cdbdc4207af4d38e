// The dashboard script (to be written).
