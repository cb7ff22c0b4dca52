"""Code identity of a stage: what it runs, as a manifest of name -> hash."""
