"""Canvas LMS: learners enrolled with a per-learner due date (canvasapi), completion read back."""
