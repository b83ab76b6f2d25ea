"""The multi-task benchmark: the tuning protocol (search spaces, studies) and the scores across tasks
(performance profiles, ranking with bootstrap intervals)."""
