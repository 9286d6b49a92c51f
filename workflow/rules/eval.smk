# Stage: eval (placeholder until its issue lands).
EVAL_TARGETS = []
