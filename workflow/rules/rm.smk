# Stage: rm (placeholder until its issue lands).
RM_TARGETS = []
