"""Evidence handling: careful copies of footage and their verification."""
