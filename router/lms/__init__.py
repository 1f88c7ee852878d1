"""Training through an LMS: learners from the team map, assignments through the pipeline,
completion read back from the LMS and from xAPI statements."""
