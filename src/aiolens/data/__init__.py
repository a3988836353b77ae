"""Sample data shipped with aiolens: the demo's sensor recordings."""
