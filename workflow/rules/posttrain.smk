# Stage: posttrain (placeholder until its issue lands).
POSTTRAIN_TARGETS = []
