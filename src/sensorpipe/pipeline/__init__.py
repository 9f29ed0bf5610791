"""Running the pipeline: starting its children, supervising them, and the run sequence."""
