"""RNN Gradient Lab engine: torch and numpy only, never Qt."""
