"""Moodle: learners enrolled in a lesson's course through Web Services (REST), completion read."""
